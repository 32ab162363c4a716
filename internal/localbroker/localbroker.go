package localbroker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
)

// Broker is what the package needs of the broker (*broker.Broker).
type Broker interface {
	// TokenMembers and RefreshMembers answer GET …/token and POST
	// …/refresh for a named client with the answer's members unencoded,
	// or the error the broker's HTTP API would write.
	// idToken asks for the provider's id_token in the answer.
	TokenMembers(ctx context.Context, id, clientName string, idToken bool) (map[string]any, error)
	RefreshMembers(ctx context.Context, id, clientName string, idToken bool) (map[string]any, error)
	// InProcessHandler is the broker's API without network guards.
	InProcessHandler() http.Handler
}

// Client is the gateway's broker, in process. It is safe for concurrent use.
type Client struct {
	*brokerclient.Client // the calls answered through the handler
	b                    Broker
}

// inProcessBase names the broker in the URLs of in-memory requests; no
// request to it ever leaves the process.
const inProcessBase = "http://broker.in-process"

// New returns a Client calling b. now is the clock brokerclient times its
// calls with.
func New(b Broker, now func() time.Time) (*Client, error) {
	if b == nil {
		return nil, errors.New("localbroker: a broker is required")
	}
	cl, err := brokerclient.New(brokerclient.Options{
		BaseURL: inProcessBase,
		HTTPClient: &http.Client{
			Transport:     handlerTransport{b.InProcessHandler()},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Now: now,
	})
	if err != nil {
		return nil, err
	}
	return &Client{Client: cl, b: b}, nil
}

// Token reads a currently valid access token for a connection.
func (c *Client) Token(ctx context.Context, id, clientName string) (brokerclient.Token, error) {
	return c.TokenWith(ctx, id, clientName, brokerclient.TokenOptions{})
}

// TokenWith is Token with options.
func (c *Client) TokenWith(ctx context.Context, id, clientName string, o brokerclient.TokenOptions) (brokerclient.Token, error) {
	m, err := c.b.TokenMembers(ctx, id, clientName, o.IDToken)
	if err != nil {
		return brokerclient.Token{}, brokerclient.FromBroker(brokerclient.OpGetToken, err)
	}
	return brokerclient.TokenFromMembers(brokerclient.OpGetToken, m)
}

// Refresh forces a refresh at the provider.
func (c *Client) Refresh(ctx context.Context, id, clientName string) (brokerclient.Token, error) {
	return c.RefreshWith(ctx, id, clientName, brokerclient.TokenOptions{})
}

// RefreshWith is Refresh with options.
func (c *Client) RefreshWith(ctx context.Context, id, clientName string, o brokerclient.TokenOptions) (brokerclient.Token, error) {
	m, err := c.b.RefreshMembers(ctx, id, clientName, o.IDToken)
	if err != nil {
		return brokerclient.Token{}, brokerclient.FromBroker(brokerclient.OpRefresh, err)
	}
	return brokerclient.TokenFromMembers(brokerclient.OpRefresh, m)
}

// handlerTransport answers requests with a handler, in memory.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	w := &memoryResponse{header: http.Header{}}
	// The handler sees what a server would give it: the path and query,
	// the body, no peer address.
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	if in.Body == nil {
		in.Body = http.NoBody
	}
	t.h.ServeHTTP(w, in)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{
		Status: http.StatusText(w.status), StatusCode: w.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(bytes.NewReader(w.body.Bytes())), ContentLength: int64(w.body.Len()),
		Request: req,
	}, nil
}

// memoryResponse is an http.ResponseWriter kept in memory.
type memoryResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *memoryResponse) Header() http.Header { return w.header }

func (w *memoryResponse) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *memoryResponse) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}
