package mcpconnect

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/mcp"
	"github.com/dromos-dev/dromos/internal/storage"
)

// Routes hands the operator API for MCP clients to handle (mounted behind
// the broker's guards).
func (c *Connector) Routes(handle func(pattern string, h func(http.ResponseWriter, *http.Request) error)) {
	handle("POST /mcp/clients", c.putClient)
	handle("GET /mcp/clients", c.listClients)
	handle("DELETE /mcp/clients", c.deleteClient)
}

// ServeMetadataDocument serves the Client ID Metadata Document (public:
// authorization servers fetch it).
func (c *Connector) ServeMetadataDocument(w http.ResponseWriter, _ *http.Request) error {
	doc := c.MetadataDocument()
	if doc == nil {
		return httpapi.NotFound("client metadata document")
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	httpapi.WriteJSON(w, http.StatusOK, doc)
	return nil
}

// clientBody is an operator's pre-registration: the client an operator
// registered by hand at an authorization server, named by its issuer or
// by an MCP server it protects (the broker then discovers the issuer).
type clientBody struct {
	Issuer                  string `json:"issuer"`
	MCPServerURL            string `json:"mcp_server_url"`
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret"`
	PrivateKeyPEM           string `json:"private_key_pem"`
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method"`
}

type clientView struct {
	Issuer         string    `json:"issuer"`
	ClientID       string    `json:"client_id"`
	AuthMethod     string    `json:"token_endpoint_auth_method"`
	Source         string    `json:"source"`
	HasCredentials bool      `json:"has_credentials"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func view(m storage.MCPClient) clientView {
	return clientView{Issuer: m.Issuer, ClientID: m.ClientID, AuthMethod: m.AuthMethod, Source: m.Source,
		HasCredentials: len(m.Credentials) > 0, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func (b *clientBody) validate() error {
	var probs []string
	b.Issuer, b.MCPServerURL, b.ClientID = strings.TrimSpace(b.Issuer), strings.TrimSpace(b.MCPServerURL), strings.TrimSpace(b.ClientID)
	if (b.Issuer == "") == (b.MCPServerURL == "") {
		probs = append(probs, "exactly one of issuer and mcp_server_url is required")
	}
	if b.ClientID == "" || len(b.ClientID) > 1024 {
		probs = append(probs, "client_id is required (at most 1024 characters)")
	}
	switch b.TokenEndpointAuthMethod {
	case "":
		if b.ClientSecret != "" {
			b.TokenEndpointAuthMethod = mcp.AuthBasic
		} else {
			b.TokenEndpointAuthMethod = mcp.AuthNone
		}
	case mcp.AuthBasic, mcp.AuthPost, mcp.AuthNone, mcp.AuthPrivateJWT:
	default:
		probs = append(probs, "token_endpoint_auth_method must be client_secret_basic, client_secret_post, none or private_key_jwt")
	}
	switch b.TokenEndpointAuthMethod {
	case mcp.AuthBasic, mcp.AuthPost:
		if b.ClientSecret == "" {
			probs = append(probs, "client_secret is required for "+b.TokenEndpointAuthMethod)
		}
	case mcp.AuthPrivateJWT:
		if err := checkPrivateKey(b.PrivateKeyPEM); err != nil {
			probs = append(probs, "private_key_pem: "+err.Error())
		}
	}
	if len(probs) > 0 {
		return httpapi.BadRequest("%s", strings.Join(probs, "; "))
	}
	return nil
}

// checkPrivateKey accepts a PKCS #8 (or SEC 1 / PKCS #1) PEM private key.
func checkPrivateKey(p string) error {
	blk, _ := pem.Decode([]byte(p))
	if blk == nil {
		return errors.New("is not a PEM block")
	}
	if _, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return nil
	}
	return errors.New("is not a PKCS #8, SEC 1 or PKCS #1 private key")
}

func (c *Connector) putClient(w http.ResponseWriter, r *http.Request) error {
	var in clientBody
	if err := httpapi.DecodeJSON(w, r, &in, httpapi.MaxBody); err != nil {
		return err
	}
	if err := in.validate(); err != nil {
		return err
	}
	issuer := in.Issuer
	if in.MCPServerURL != "" {
		d, err := c.disco.Discover(r.Context(), in.MCPServerURL)
		if err != nil {
			return HTTPError(err)
		}
		issuer = d.Issuer
	}
	now := c.now().UTC()
	m := storage.MCPClient{Issuer: issuer, ClientID: in.ClientID, AuthMethod: in.TokenEndpointAuthMethod,
		Source: SourcePreregistered, CreatedAt: now, UpdatedAt: now}
	var err error
	if m.Credentials, err = c.seal(issuer, credentials{ClientSecret: in.ClientSecret, PrivateKeyPEM: in.PrivateKeyPEM}); err != nil {
		return err
	}
	if err := c.store.PutMCPClient(r.Context(), m); err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, view(m))
	return nil
}

func (c *Connector) listClients(w http.ResponseWriter, r *http.Request) error {
	list, err := c.store.ListMCPClients(r.Context())
	if err != nil {
		return err
	}
	out := make([]clientView, 0, len(list))
	for _, m := range list {
		out = append(out, view(m))
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"clients": out})
	return nil
}

func (c *Connector) deleteClient(w http.ResponseWriter, r *http.Request) error {
	issuer := r.URL.Query().Get("issuer")
	if issuer == "" {
		return httpapi.BadRequest("issuer query parameter is required")
	}
	err := c.store.DeleteMCPClient(r.Context(), issuer)
	if errors.Is(err, storage.ErrNotFound) {
		return httpapi.NotFound("mcp client")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// HTTPError maps a refusal of package mcp to the API's error envelope:
// 400 for what the broker refuses on principle, 422 for a server that
// answered something unusable. Other errors pass unchanged.
func HTTPError(err error) error {
	var e *mcp.Error
	if !errors.As(err, &e) {
		return err
	}
	status := http.StatusBadRequest
	switch e.Code {
	case mcp.CodeUnreachable, mcp.CodeBadMetadata, mcp.CodeRegistrationFailed:
		status = http.StatusUnprocessableEntity
	}
	return &httpapi.Error{Status: status, Code: e.Code, Message: e.Message, Cause: e}
}
