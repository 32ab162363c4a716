package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dromos-dev/dromos/internal/config"
)

const (
	agentName    = "bench-agent"
	providerName = "bench"
	returnURL    = "http://127.0.0.1/bench/return"
)

// secrets are one stack's keys, fresh for every run.
type secrets struct {
	encryptionKey, stateKey string // base64 of 32 bytes
	statePublicKeys         string // the gateway's STATE_PUBLIC_KEYS
	brokerKey, agentKey     string // hex of 32 bytes
	clientSecret            string
}

func newSecrets(random io.Reader) (secrets, error) {
	read := func(b []byte) (int, error) { return io.ReadFull(random, b) }
	var s secrets
	var err error
	if s.encryptionKey, err = config.NewKey(read); err != nil {
		return s, err
	}
	if s.stateKey, err = config.NewKey(read); err != nil {
		return s, err
	}
	if s.statePublicKeys, err = config.StatePublicKeys(config.Env{"STATE_KEY": s.stateKey}); err != nil {
		return s, err
	}
	for _, k := range []*string{&s.brokerKey, &s.agentKey, &s.clientSecret} {
		var b [32]byte
		if _, err := read(b[:]); err != nil {
			return s, err
		}
		*k = hex.EncodeToString(b[:])
	}
	return s, nil
}

// stack is a broker and a gateway process on one storage backend, with the
// fake provider registered and active connections made through it.
type stack struct {
	backend         string
	broker, gateway *process
	brokerURL       string
	gatewayURL      string
	keys            secrets
	providerAuthURL string
	client          *http.Client
	conns           []string // active connection ids, tokens valid for an hour
	tokenBodySize   int
}

// startStack runs the broker on databaseURL, then the gateway in front of
// it, both with authentication on as in production.
func startStack(ctx context.Context, backend, bin, databaseURL, logDir string, keys secrets) (*stack, error) {
	s := &stack{backend: backend, keys: keys, client: newClient(16)}
	sum := sha256.Sum256([]byte(keys.agentKey))
	// The broker must know its own URL (BASE_URL: authUrl and redirect_uri
	// are built from it), so it gets a port chosen beforehand, and another
	// one if that was taken in the meantime. The gateway's ports can be
	// left to the kernel: it announces them.
	var err error
	for attempt := 1; ; attempt++ {
		port, perr := freePort()
		if perr != nil {
			return nil, perr
		}
		base := "http://127.0.0.1:" + strconv.Itoa(port)
		s.broker, err = startProcess(ctx, backend+"-broker", Command{Path: bin, Args: []string{"broker"}, Env: []string{
			"PORT=" + strconv.Itoa(port), "LISTEN_HOST=127.0.0.1", "BASE_URL=" + base,
			"DATABASE_URL=" + databaseURL,
			"ENCRYPTION_KEY=" + keys.encryptionKey, "STATE_KEY=" + keys.stateKey,
			"API_KEY=" + keys.brokerKey, "REQUIRE_API_KEY=true", "LOG_LEVEL=info",
			// Every request comes from 127.0.0.1; the per-address limits
			// would measure the limiter.
			"RATE_LIMIT_CALLBACK=0", "RATE_LIMIT_CONSENT=0",
			// One agent opens every consent of the set-up at once.
			"MAX_PENDING_PER_CLIENT=0",
		}}, logDir, "broker")
		if err == nil || !errors.Is(err, errPortTaken) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	s.brokerURL = s.broker.url("broker")
	s.gateway, err = startProcess(ctx, backend+"-gateway", Command{Path: bin, Args: []string{"gateway"}, Env: []string{
		"PORT=0", "PORT_GRPC=0", "LISTEN_HOST=127.0.0.1",
		"BROKER_BASE_URL=" + s.brokerURL, "BROKER_API_KEY=" + keys.brokerKey, "STATE_PUBLIC_KEYS=" + keys.statePublicKeys,
		"GATEWAY_API_KEYS=" + agentName + ":sha256:" + hex.EncodeToString(sum[:]), "LOG_LEVEL=info",
		// One agent makes every connection of the set-up.
		"GATEWAY_CONSENT_RATE_LIMIT=0",
		// The proxy part's upstream is on loopback, and one agent makes
		// every proxied call.
		"GATEWAY_PROXY_ALLOW_PRIVATE=true", "GATEWAY_PROXY_MAX_PER_AGENT=4096",
	}}, logDir, "gateway-http", "gateway-grpc")
	if err != nil {
		s.stop()
		return nil, err
	}
	s.gatewayURL = s.gateway.url("gateway-http")
	if err := s.waitReady(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// startServe runs `dromos serve` on databaseURL with the stack's keys and
// agent, and returns it with its gateway's URL once both parts answer.
func startServe(ctx context.Context, backend, bin, databaseURL, logDir string, keys secrets) (*process, string, error) {
	sum := sha256.Sum256([]byte(keys.agentKey))
	p, err := startProcess(ctx, backend+"-serve", Command{Path: bin, Args: []string{"serve"}, Env: []string{
		// Token reads need no BASE_URL of their own: no consent runs here.
		"PORT=0", "GATEWAY_PORT=0", "GATEWAY_PORT_GRPC=0", "LISTEN_HOST=127.0.0.1", "BASE_URL=http://127.0.0.1",
		"DATABASE_URL=" + databaseURL,
		"ENCRYPTION_KEY=" + keys.encryptionKey, "STATE_KEY=" + keys.stateKey,
		"API_KEY=" + keys.brokerKey, "REQUIRE_API_KEY=true", "LOG_LEVEL=info",
		"RATE_LIMIT_CALLBACK=0", "RATE_LIMIT_CONSENT=0", "MAX_PENDING_PER_CLIENT=0",
		"GATEWAY_API_KEYS=" + agentName + ":sha256:" + hex.EncodeToString(sum[:]),
		"GATEWAY_CONSENT_RATE_LIMIT=0",
	}}, logDir, "broker", "gateway-http", "gateway-grpc")
	if err != nil {
		return nil, "", err
	}
	probe := &stack{client: newClient(1)}
	defer probe.client.CloseIdleConnections()
	for _, u := range []string{p.url("broker") + "/ready", p.url("gateway-http") + "/health"} {
		for try := 0; ; try++ {
			status, err := probe.call(ctx, http.MethodGet, u, nil, nil, nil)
			if err == nil && status == http.StatusOK {
				break
			}
			if try == 50 {
				p.stop()
				return nil, "", fmt.Errorf("%s: status %d, %v", u, status, err)
			}
			if !sleep(ctx, 100*time.Millisecond) {
				p.stop()
				return nil, "", ctx.Err()
			}
		}
	}
	return p, p.url("gateway-http"), nil
}

func (s *stack) stop() {
	for _, p := range []*process{s.gateway, s.broker} {
		if p != nil {
			p.stop()
		}
	}
	s.client.CloseIdleConnections()
}

func (s *stack) waitReady(ctx context.Context) error {
	for _, u := range []string{s.brokerURL + "/ready", s.gatewayURL + "/health"} {
		var last error
		for try := 0; ; try++ {
			status, err := s.call(ctx, http.MethodGet, u, nil, nil, nil)
			if err == nil && status == http.StatusOK {
				break
			}
			last = fmt.Errorf("%s: status %d, %v", u, status, err)
			if try == 50 {
				return last
			}
			if !sleep(ctx, 100*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	return nil
}

// call sends a JSON request and decodes a JSON answer into out (when not
// nil). Only the status and transport errors are returned: bodies may hold
// tokens.
func (s *stack) call(ctx context.Context, method, u string, header http.Header, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, withoutURL(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding the answer of %s %s: %w", method, u, err)
		}
	}
	return resp.StatusCode, nil
}

func (s *stack) brokerHeader() http.Header { return http.Header{"X-Api-Key": {s.keys.brokerKey}} }
func (s *stack) agentHeader() http.Header {
	return http.Header{"Authorization": {"Bearer " + s.keys.agentKey}}
}

// registerProvider registers the fake provider at the broker.
func (s *stack) registerProvider(ctx context.Context, p *fakeProvider) error {
	profile := map[string]any{
		"name": providerName, "auth_url": p.authURL(), "token_url": p.tokenURL(),
		"client_id": fakeClientID, "client_secret": s.keys.clientSecret,
		"scopes": []string{"read", "write"}, "token_endpoint_auth_method": "client_secret_basic",
		// The API proxy part reads the fake provider's API.
		"api_base_urls": []string{p.srv.URL + "/api"},
	}
	st, err := s.call(ctx, http.MethodPost, s.brokerURL+"/providers", s.brokerHeader(), map[string]any{"profile": profile}, nil)
	if err != nil {
		return fmt.Errorf("registering the provider: %w", err)
	}
	if st != http.StatusCreated {
		return fmt.Errorf("registering the provider: HTTP %d", st)
	}
	s.providerAuthURL = p.authURL()
	return nil
}

// requestConnectionBody is what the load and the set-up post.
func requestConnectionBody(user string) map[string]any {
	return map[string]any{"user_id": user, "provider_name": providerName,
		"scopes": []string{"read", "write"}, "return_url": returnURL}
}

// connect makes one active connection the way a user's browser would,
// minus the consent page: request it through the gateway, open the authUrl
// (when the broker binds the flow to the browser, that sets its cookie and
// redirects to the provider), then deliver code to the broker's callback
// with the state the gateway handed out.
func (s *stack) connect(ctx context.Context, user, code string) (string, error) {
	var grant struct {
		AuthURL      string `json:"authUrl"`
		ConnectionID string `json:"connection_id"`
		State        string `json:"state"`
	}
	st, err := s.call(ctx, http.MethodPost, s.gatewayURL+"/v1/request-connection", s.agentHeader(), requestConnectionBody(user), &grant)
	if err != nil {
		return "", fmt.Errorf("request-connection: %w", err)
	}
	if st != http.StatusOK || grant.ConnectionID == "" || grant.State == "" {
		return "", fmt.Errorf("request-connection: HTTP %d", st)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	browser := &http.Client{Transport: s.client.Transport, Jar: jar, Timeout: s.client.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if !strings.HasPrefix(grant.AuthURL, s.providerAuthURL) {
		resp, err := get(ctx, browser, grant.AuthURL)
		if err != nil {
			return "", fmt.Errorf("opening the authUrl: %w", err)
		}
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), s.providerAuthURL) {
			return "", fmt.Errorf("opening the authUrl: HTTP %d, not a redirect to the provider", resp.StatusCode)
		}
	}
	q := url.Values{"state": {grant.State}, "code": {code}}
	resp, err := get(ctx, browser, s.brokerURL+"/auth/callback?"+q.Encode())
	if err != nil {
		return "", fmt.Errorf("callback: %w", err)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Query().Get("status") != "success" {
		return "", fmt.Errorf("callback: HTTP %d, landing status %q", resp.StatusCode, loc.Query().Get("status"))
	}
	if got := loc.Query().Get("connection_id"); got != grant.ConnectionID {
		return "", errors.New("callback: the landing URL names another connection")
	}
	return grant.ConnectionID, nil
}

// get sends a GET and discards the body; the caller reads status and
// headers.
func get(ctx context.Context, c *http.Client, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, withoutURL(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// connectMany makes n active connections with hour-long tokens, eight at a
// time, and reads one token to check the whole chain.
func (s *stack) connectMany(ctx context.Context, n int) error {
	ids := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ids[i], errs[i] = s.connect(ctx, "user-"+strconv.Itoa(i), "code-"+s.backend+"-"+strconv.Itoa(i))
		}()
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d connections failed; first: %w", failed, n, firstError(errs))
	}
	s.conns = ids
	var raw json.RawMessage
	st, err := s.call(ctx, http.MethodGet, s.tokenURL(ids[0]), s.agentHeader(), nil, &raw)
	if err != nil || st != http.StatusOK {
		return fmt.Errorf("first token read: HTTP %d, %v", st, err)
	}
	s.tokenBodySize = len(raw)
	return nil
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *stack) tokenURL(id string) string { return s.gatewayURL + "/v1/token/" + id }

// tokenRequests cycles the workers through the active connections.
func (s *stack) tokenRequests(auth string) requestFunc {
	return s.tokenRequestsAt(s.gatewayURL, auth)
}

// tokenRequestsAt is tokenRequests sent to the gateway at base.
func (s *stack) tokenRequestsAt(base, auth string) requestFunc {
	urls := make([]string, len(s.conns))
	for i, id := range s.conns {
		urls[i] = base + "/v1/token/" + id
	}
	return func(ctx context.Context, w, i int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[(w*7919+i)%len(urls)], nil)
		if err == nil {
			req.Header.Set("Authorization", auth)
		}
		return req, err
	}
}

// brokerTokenRequests are the reads the gateway would make for the token
// reads, sent to the broker directly.
func (s *stack) brokerTokenRequests() requestFunc {
	urls := make([]string, len(s.conns))
	for i, id := range s.conns {
		urls[i] = s.brokerURL + "/connections/" + id + "/token?client_name=" + agentName
	}
	return func(ctx context.Context, w, i int) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, urls[(w*7919+i)%len(urls)], nil)
		if err == nil {
			req.Header.Set("X-API-Key", s.keys.brokerKey)
		}
		return req, err
	}
}

// requestConnectionRequests posts new connection requests, one user per
// worker.
func (s *stack) requestConnectionRequests() requestFunc {
	return func(ctx context.Context, w, _ int) (*http.Request, error) {
		raw, err := json.Marshal(requestConnectionBody("load-" + strconv.Itoa(w)))
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.gatewayURL+"/v1/request-connection", bytes.NewReader(raw))
		if err == nil {
			req.Header.Set("Authorization", "Bearer "+s.keys.agentKey)
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}
}

// withoutURL drops the URL from a client error: callback and start URLs
// carry the state, which is not printed.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
