package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/proxy"
)

// maxGRPCProxyAnswer bounds a ProxyCall answer's body: gRPC carries it in
// one message, so the answer stays well inside the client's default 4 MiB
// receive limit.
const maxGRPCProxyAnswer = 4<<20 - 64<<10

// ProxyCall is the API proxy for small bodies: the same path checks,
// injection, refresh-and-retry and audit as the REST route, on a request
// built from the message and an answer collected in memory.
func (s *grpcServer) ProxyCall(ctx context.Context, in *dromosv1.ProxyCallRequest) (*dromosv1.ProxyCallResponse, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	method := in.GetMethod()
	if method == "" {
		method = http.MethodGet
	}
	id := in.GetConnectionId()
	if err := checkConnectionID(id); err != nil {
		return nil, s.status(ctx, err)
	}
	u := &url.URL{Path: proxyPrefix + id + "/", RawQuery: in.GetQuery()}
	// The path is taken as escaped, as a REST request line carries it.
	u.RawPath = proxyPrefix + id + "/" + in.GetPath()
	if p, err := url.PathUnescape(in.GetPath()); err == nil {
		u.Path += p
	} else {
		return nil, s.status(ctx, &httpapi.Error{Status: http.StatusBadRequest, Code: proxy.CodePathRefused, Message: "the path holds a malformed percent-encoding"})
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://gateway.invalid/", bytes.NewReader(in.GetBody()))
	if err != nil {
		return nil, s.status(ctx, httpapi.BadRequest("method is not an HTTP method"))
	}
	req.URL = u
	req.ContentLength = int64(len(in.GetBody()))
	if len(in.GetBody()) == 0 {
		req.Body = http.NoBody
	}
	for _, h := range in.GetHeaders() {
		req.Header.Add(h.GetName(), h.GetValue())
	}
	if in.GetBase() > 0 {
		req.Header.Set(proxy.BaseHeader, strconv.FormatUint(uint64(in.GetBase()), 10))
	}
	req.RemoteAddr = grpcPeer(ctx)
	w := &bufferedAnswer{header: http.Header{}, limit: maxGRPCProxyAnswer}
	rec, err := s.g.proxy.forward(w, req, c, id)
	s.g.auditProxy(ctx, rec, id, err)
	if err != nil {
		if proxy.Aborted(err) || w.over {
			return nil, s.status(ctx, httpapi.BadGateway(httpapi.CodeTooLarge,
				fmt.Sprintf("the provider's answer is over the %d bytes a ProxyCall carries; use the REST route", maxGRPCProxyAnswer), err))
		}
		return nil, s.status(ctx, err)
	}
	out := &dromosv1.ProxyCallResponse{Status: int32(w.status), Body: w.body.Bytes()}
	for name, vs := range w.header {
		for _, v := range vs {
			out.Headers = append(out.Headers, &dromosv1.ProxyHeader{Name: name, Value: v})
		}
	}
	return out, nil
}

// bufferedAnswer is an http.ResponseWriter that keeps the answer in
// memory, up to limit bytes of body.
type bufferedAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
	limit  int
	over   bool
}

func (b *bufferedAnswer) Header() http.Header { return b.header }

func (b *bufferedAnswer) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedAnswer) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.body.Len()+len(p) > b.limit {
		b.over = true
		return 0, fmt.Errorf("answer over %d bytes", b.limit)
	}
	return b.body.Write(p)
}
