package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	dromosv1 "github.com/dromos-dev/dromos/api/proto/dromos/v1"
	"github.com/dromos-dev/dromos/internal/gateway/brokerclient"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/logging"
)

// ErrorDomain is the ErrorInfo domain of every gRPC error the gateway sends.
const ErrorDomain = "dromos.dev"

// grpcServer adapts the gRPC wire types to service calls; the operations
// themselves live in service.
type grpcServer struct {
	dromosv1.UnimplementedGatewayServer
	g *Gateway
}

func (s *grpcServer) caller(ctx context.Context) (Caller, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c, err := s.g.auth.authenticate(md.Get("authorization"), md.Get("x-api-key"))
	if err != nil {
		return c, err
	}
	return c, s.g.admit(c, grpcPeer(ctx))
}

func (s *grpcServer) RequestConnection(ctx context.Context, in *dromosv1.RequestConnectionRequest) (*dromosv1.RequestConnectionResponse, error) {
	c, err := s.caller(ctx)
	if err == nil {
		err = s.g.admitConsent(c, grpcPeer(ctx))
	}
	if err != nil {
		return nil, s.status(ctx, err)
	}
	meta, err := grpcMetadata(in.GetMetadata(), in.GetMetadataJson())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out, err := s.g.svc.RequestConnection(ctx, c, ConnectionRequest{
		UserID:       in.GetUserId(),
		ProviderName: in.GetProviderName(),
		Scopes:       in.GetScopes(),
		ReturnURL:    in.GetReturnUrl(),
		Metadata:     meta,
		ConnectionID: in.GetConnectionId(),
		MCPServerURL: in.GetMcpServerUrl(),
		Grant:        in.GetGrant(),
		Credentials:  in.GetCredentials(),
		ConfirmURL:   in.GetConfirmUrl(),
		// The key's option is added by the service, as for REST.
		RequireConfirmation: in.GetRequireConfirmation(),
		ExpectedIdentity:    expectedIdentity(in.GetExpectedIdentity()),
	})
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return &dromosv1.RequestConnectionResponse{
		AuthUrl:      out.AuthURL,
		ConnectionId: out.ConnectionID,
		State:        out.State,
		Scopes:       out.Scopes,
		ProviderId:   out.ProviderID,
		Status:       out.Status,
		StatusReason: out.StatusReason,

		VerificationUri:         out.VerificationURI,
		VerificationUriComplete: out.VerificationURIComplete,
		UserCode:                out.UserCode,
		ExpiresIn:               out.ExpiresIn,
		Interval:                out.Interval,
	}, nil
}

func (s *grpcServer) CheckConnection(ctx context.Context, in *dromosv1.CheckConnectionRequest) (*dromosv1.CheckConnectionResponse, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out, err := s.g.svc.CheckConnection(ctx, c, in.GetConnectionId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return checkMessage(out), nil
}

// checkMessage is a CheckConnection answer as a message.
func checkMessage(out ConnectionStatus) *dromosv1.CheckConnectionResponse {
	st := dromosv1.ConnectionStatus_CONNECTION_STATUS_UNSPECIFIED
	switch out.Status {
	case StatusPending:
		st = dromosv1.ConnectionStatus_CONNECTION_STATUS_PENDING
	case StatusActive:
		st = dromosv1.ConnectionStatus_CONNECTION_STATUS_ACTIVE
	case StatusFailed:
		st = dromosv1.ConnectionStatus_CONNECTION_STATUS_FAILED
	}
	resp := &dromosv1.CheckConnectionResponse{Status: st, Detail: out.Detail, Reason: out.Reason, ProviderData: out.ProviderData,
		Metadata: structMetadata(out.Metadata)}
	if su := out.StepUp; su != nil {
		resp.StepUp = &dromosv1.StepUp{Status: su.Status, Reason: su.Reason, Scopes: su.Scopes}
	}
	return resp
}

func (s *grpcServer) GetToken(ctx context.Context, in *dromosv1.GetTokenRequest) (*dromosv1.Token, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	t, err := s.g.svc.Token(ctx, c, in.GetConnectionId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return tokenMessage(t), nil
}

func (s *grpcServer) RefreshToken(ctx context.Context, in *dromosv1.RefreshTokenRequest) (*dromosv1.Token, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	t, err := s.g.svc.Refresh(ctx, c, in.GetConnectionId())
	if err != nil {
		return nil, s.status(ctx, err)
	}
	return tokenMessage(t), nil
}

func (s *grpcServer) DeleteConnection(ctx context.Context, in *dromosv1.DeleteConnectionRequest) (*dromosv1.DeleteConnectionResponse, error) {
	c, err := s.caller(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	if err := s.g.svc.DeleteConnection(ctx, c, in.GetConnectionId()); err != nil {
		return nil, s.status(ctx, err)
	}
	return &dromosv1.DeleteConnectionResponse{}, nil
}

func (s *grpcServer) ListProviders(ctx context.Context, in *dromosv1.ListProvidersRequest) (*dromosv1.ListProvidersResponse, error) {
	if _, err := s.caller(ctx); err != nil {
		return nil, s.status(ctx, err)
	}
	ps, err := s.g.svc.Providers(ctx)
	if err != nil {
		return nil, s.status(ctx, err)
	}
	out := &dromosv1.ListProvidersResponse{Providers: make([]*dromosv1.Provider, len(ps))}
	for i, p := range ps {
		out.Providers[i] = &dromosv1.Provider{Name: p.Name, DisplayName: p.DisplayName, Scopes: p.Scopes}
	}
	if in.GetIncludeCatalog() {
		items, err := s.g.svc.Catalog(ctx)
		if err != nil {
			return nil, s.status(ctx, err)
		}
		for _, it := range items {
			out.Catalog = append(out.Catalog, &dromosv1.CatalogEntry{Name: it.Name, DisplayName: it.DisplayName,
				DocsUrl: it.DocsURL, TemplateParams: it.TemplateParams, Configured: it.Configured})
		}
	}
	return out, nil
}

// tokenMessage converts a token; extras that are JSON strings are given
// as the string, any other value as its compact JSON text.
func tokenMessage(t brokerclient.Token) *dromosv1.Token {
	m := &dromosv1.Token{
		AccessToken: t.AccessToken,
		TokenType:   t.TokenType,
		ExpiresIn:   t.ExpiresIn,
		Scope:       t.Scope,
		Provider:    t.Provider,
	}
	if !t.ExpiresAt.IsZero() {
		m.ExpiresAt = timestamppb.New(t.ExpiresAt)
	}
	if t.IDToken != "" {
		id := t.IDToken
		m.IdToken = &id
	}
	if len(t.Extras) > 0 {
		m.Extras = make(map[string]string, len(t.Extras))
		for k, v := range t.Extras {
			var s string
			if err := json.Unmarshal(v, &s); err == nil {
				m.Extras[k] = s
				continue
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err == nil {
				m.Extras[k] = buf.String()
			}
		}
	}
	return m
}

// status maps a service error to a gRPC status carrying the contract code
// in its message and in an ErrorInfo detail. Unknown errors are logged and
// become a bare Internal.
func (s *grpcServer) status(ctx context.Context, err error) error {
	e, ok := httpapi.As(err)
	if !ok {
		s.g.log.ErrorContext(ctx, "internal error", "rpc", methodName(ctx), "err", err)
		e = &httpapi.Error{Status: http.StatusInternalServerError, Code: httpapi.CodeInternal, Message: "internal error"}
	} else if e.Cause != nil {
		level := slog.LevelInfo
		if e.Status >= 500 {
			level = slog.LevelWarn
		}
		s.g.log.Log(ctx, level, "request failed", "rpc", methodName(ctx), "status", e.Status, "error_code", e.Code, "err", e.Cause)
	}
	st := status.New(grpcCode(e), e.Code+": "+e.Message)
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{
		Reason:   e.Code,
		Domain:   ErrorDomain,
		Metadata: map[string]string{"http_status": strconv.Itoa(e.Status)},
	}}
	if e.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
	}
	if withDetails, derr := st.WithDetails(details...); derr == nil {
		st = withDetails
	}
	return st.Err()
}

func grpcCode(e *httpapi.Error) codes.Code {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		if e.Code == httpapi.CodeAlreadyExists {
			return codes.AlreadyExists
		}
		return codes.FailedPrecondition
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusBadGateway:
		if e.Code == httpapi.CodeProviderError {
			return codes.Unavailable
		}
		return codes.Internal
	case http.StatusInternalServerError:
		return codes.Internal
	}
	return codes.Unknown
}

func methodName(ctx context.Context) string {
	m, _ := grpc.Method(ctx)
	return m
}

// requestIDKey is the gRPC metadata key for the request id, as X-Request-Id
// is for HTTP.
const requestIDKey = "x-request-id"

// unaryRequestID gives each call a request id (kept from x-request-id
// metadata when sane), echoes it in the response header and logs the call.
func (g *Gateway) unaryRequestID(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := g.now()
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestIDKey); len(v) > 0 && saneRequestID(v[0]) {
			id = v[0]
		}
	}
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	ctx = logging.WithRequestID(ctx, id)
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDKey, id))
	resp, err := h(ctx, req)
	g.log.DebugContext(ctx, "rpc", "method", info.FullMethod, "grpc_code", status.Code(err).String(),
		"duration_ms", float64(g.now().Sub(start).Microseconds())/1000)
	return resp, err
}

// saneRequestID accepts the same ids the HTTP middleware keeps: short and
// plain, so metadata cannot inject anything into logs.
func saneRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
