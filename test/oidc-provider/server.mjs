// Starts panva's oidc-provider on a free loopback port for Dromos tests and
// prints {"issuer": ...} on its first line of output. Settings come from
// the environment:
//   CLIENT_ID, CLIENT_SECRET, REDIRECT_URI  the one registered client
//   REQUIRE_PAR=true                        accept only pushed requests (RFC 9126)
//   DEVICE_FLOW=true                        enable the device authorization grant
//                                           (RFC 8628) and allow it to the client
// The login and consent pages are the provider's development interactions:
// any login name is accepted, with any password.
import http from 'node:http';
import Provider from 'oidc-provider';

const env = (name) => {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is required`);
    process.exit(2);
  }
  return v;
};

const deviceFlow = process.env.DEVICE_FLOW === 'true';

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: env('CLIENT_ID'),
      client_secret: env('CLIENT_SECRET'),
      redirect_uris: [env('REDIRECT_URI')],
      grant_types: ['authorization_code', 'refresh_token',
        ...(deviceFlow ? ['urn:ietf:params:oauth:grant-type:device_code'] : [])],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    features: {
      pushedAuthorizationRequests: {
        enabled: true,
        requirePushedAuthorizationRequests: process.env.REQUIRE_PAR === 'true',
      },
      revocation: { enabled: true },
      deviceFlow: { enabled: deviceFlow },
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: `${id}@example.com`, email_verified: true };
        },
      };
    },
  });
  // Count pushed requests and authorization requests that carried their
  // parameters in the URL, so tests can tell what crossed which channel.
  const seen = { par: 0, frontChannelState: 0, tokenRequests: 0 };
  server.on('request', (req, res) => {
    const u = new URL(req.url, issuer);
    if (u.pathname === '/test/seen') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(seen));
      return;
    }
    if (u.pathname === '/request' && req.method === 'POST') seen.par += 1;
    if (u.pathname === '/auth' && u.searchParams.has('state')) seen.frontChannelState += 1;
    if (u.pathname === '/token' && req.method === 'POST') seen.tokenRequests += 1;
    provider.callback()(req, res);
  });
  console.log(JSON.stringify({ issuer }));
});
