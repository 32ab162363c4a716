package mcpconnect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dromos-dev/dromos/internal/mcp"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/secret"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

// Sources of a stored client.
const (
	SourcePreregistered    = "preregistered"
	SourceMetadataDocument = "metadata_document"
	SourceDynamic          = "dynamic"
)

// Grants an MCP connection can use.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantClientCredentials = "client_credentials"
)

// Store is the part of storage.Storage this package uses.
type Store interface {
	CreateMCPClient(ctx context.Context, c storage.MCPClient) error
	PutMCPClient(ctx context.Context, c storage.MCPClient) error
	GetMCPClient(ctx context.Context, issuer string) (storage.MCPClient, error)
	ListMCPClients(ctx context.Context) ([]storage.MCPClient, error)
	DeleteMCPClient(ctx context.Context, issuer string) error
}

// Sealer seals and opens client credentials (the vault's key ring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Providers registers (or updates) the provider an MCP server becomes.
type Providers interface {
	Ensure(ctx context.Context, prof provider.Profile) (string, error)
}

// Discoverer is package mcp's Discoverer.
type Discoverer interface {
	Discover(ctx context.Context, serverURL string) (mcp.Discovery, error)
	Register(ctx context.Context, md mcp.ServerMetadata, req mcp.RegistrationRequest) (mcp.Client, error)
}

// Config is what the connector's behaviour depends on.
type Config struct {
	// RedirectURI is the broker's callback, registered with every client.
	RedirectURI string
	// ClientName is the client_name of registrations and of the metadata
	// document.
	ClientName string
	// ClientMetadataURL is the URL of the broker's Client ID Metadata
	// Document, used as client_id where servers support it; "" turns the
	// document off.
	ClientMetadataURL string
}

// Deps are the connector's collaborators.
type Deps struct {
	Store      Store
	Vault      Sealer
	Providers  Providers
	Discoverer Discoverer
	Now        func() time.Time
}

// Connector resolves MCP server URLs into providers.
type Connector struct {
	cfg   Config
	store Store
	vault Sealer
	provs Providers
	disco Discoverer
	now   func() time.Time
}

// New returns a Connector; every Deps field but Now is required.
func New(cfg Config, d Deps) (*Connector, error) {
	if d.Store == nil || d.Vault == nil || d.Providers == nil || d.Discoverer == nil {
		return nil, errors.New("mcpconnect: Store, Vault, Providers and Discoverer are required")
	}
	if cfg.ClientName == "" {
		cfg.ClientName = "Dromos"
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Connector{cfg: cfg, store: d.Store, vault: d.Vault, provs: d.Providers, disco: d.Discoverer, now: d.Now}, nil
}

// Target is what a connection to an MCP server uses.
type Target struct {
	ProviderID string
	// Scopes are the ones to request when the agent names none.
	Scopes    []string
	Discovery mcp.Discovery
	Client    storage.MCPClient
}

// credentials is the sealed part of a stored client.
type credentials struct {
	ClientSecret  string `json:"client_secret,omitempty"`
	PrivateKeyPEM string `json:"private_key_pem,omitempty"`
}

// ProviderName is the provider an MCP resource becomes: stable for the
// resource, so every connection to one server shares it.
func ProviderName(resource string) string {
	sum := sha256.Sum256([]byte(resource))
	return "mcp-" + hex.EncodeToString(sum[:10])
}

// Resolve discovers serverURL, gets a client at its authorization server
// and registers the provider a connection to it uses. grant is
// authorization_code ("" too) or client_credentials.
func (c *Connector) Resolve(ctx context.Context, serverURL, grant string) (Target, error) {
	if grant == "" {
		grant = GrantAuthorizationCode
	}
	if grant != GrantAuthorizationCode && grant != GrantClientCredentials {
		return Target{}, &mcp.Error{Code: mcp.CodeGrantUnsupported, Message: "grant must be authorization_code or client_credentials"}
	}
	d, err := c.disco.Discover(ctx, serverURL)
	if err != nil {
		return Target{}, err
	}
	if !d.Server.SupportsGrant(grant) && !(grant == GrantAuthorizationCode && d.DefaultEndpoints) {
		return Target{}, &mcp.Error{Code: mcp.CodeGrantUnsupported,
			Message: fmt.Sprintf("the authorization server of %s does not offer the %s grant", d.ServerURL, grant)}
	}
	client, creds, err := c.client(ctx, d, grant)
	if err != nil {
		return Target{}, err
	}
	name := ProviderName(d.Resource)
	if grant == GrantClientCredentials {
		// Machine connections to a server get a provider of their own: its
		// grant differs, and so may its client.
		name += "-m"
	}
	prof := provider.Profile{
		Name: name, DisplayName: "MCP " + d.Resource, Issuer: d.Issuer,
		AuthURL: d.Server.AuthorizationEndpoint, TokenURL: d.Server.TokenEndpoint, RevocationURL: d.Server.RevocationEndpoint,
		ClientID: client.ClientID, ClientSecret: secret.String(creds.ClientSecret), TokenEndpointAuthMethod: client.AuthMethod,
		Scopes: d.DefaultScopes(), Resource: d.Resource,
	}
	if client.AuthMethod == mcp.AuthPrivateJWT {
		prof.ClientSecret = secret.String(creds.PrivateKeyPEM)
	}
	if grant == GrantClientCredentials {
		prof.Grant = provider.GrantClientCredentials
	}
	if prof.AuthURL == "" {
		// A client_credentials-only server has no authorization endpoint;
		// the profile needs one, and no consent will ever use it.
		prof.AuthURL = prof.TokenURL
	}
	id, err := c.provs.Ensure(ctx, prof)
	if err != nil {
		return Target{}, err
	}
	return Target{ProviderID: id, Scopes: d.DefaultScopes(), Discovery: d, Client: client}, nil
}

// client returns the broker's client at d's authorization server,
// registering one when there is none yet.
func (c *Connector) client(ctx context.Context, d mcp.Discovery, grant string) (storage.MCPClient, credentials, error) {
	stored, err := c.store.GetMCPClient(ctx, d.Issuer)
	switch {
	case err == nil:
		creds, err := c.open(stored)
		return stored, creds, err
	case !errors.Is(err, storage.ErrNotFound):
		return storage.MCPClient{}, credentials{}, err
	}
	if grant == GrantClientCredentials {
		return storage.MCPClient{}, credentials{}, &mcp.Error{Code: mcp.CodeNoClient,
			Message: fmt.Sprintf("the client_credentials grant needs a client the operator registered for %s (POST /mcp/clients)", d.Issuer)}
	}
	var (
		fresh storage.MCPClient
		creds credentials
	)
	now := c.now().UTC()
	switch {
	case d.Server.ClientIDMetadataDocumentSupported && c.cfg.ClientMetadataURL != "":
		fresh = storage.MCPClient{Issuer: d.Issuer, ClientID: c.cfg.ClientMetadataURL, AuthMethod: mcp.AuthNone, Source: SourceMetadataDocument}
	default:
		reg, err := c.disco.Register(ctx, d.Server, mcp.RegistrationRequest{
			ClientName: c.cfg.ClientName, RedirectURIs: []string{c.cfg.RedirectURI},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"},
		})
		if err != nil {
			return storage.MCPClient{}, credentials{}, err
		}
		fresh = storage.MCPClient{Issuer: d.Issuer, ClientID: reg.ClientID, AuthMethod: reg.AuthMethod, Source: SourceDynamic}
		creds.ClientSecret = reg.ClientSecret.Reveal()
	}
	fresh.CreatedAt, fresh.UpdatedAt = now, now
	if fresh.Credentials, err = c.seal(d.Issuer, creds); err != nil {
		return storage.MCPClient{}, credentials{}, err
	}
	if err := c.store.CreateMCPClient(ctx, fresh); errors.Is(err, storage.ErrAlreadyExists) {
		// Another request registered first: use that client, so every
		// connection shares one.
		won, err := c.store.GetMCPClient(ctx, d.Issuer)
		if err != nil {
			return storage.MCPClient{}, credentials{}, err
		}
		creds, err := c.open(won)
		return won, creds, err
	} else if err != nil {
		return storage.MCPClient{}, credentials{}, err
	}
	return fresh, creds, nil
}

func (c *Connector) seal(issuer string, creds credentials) ([]byte, error) {
	if creds == (credentials{}) {
		return nil, nil
	}
	plain, err := json.Marshal(creds)
	if err != nil {
		return nil, err
	}
	return c.vault.Seal(plain, tokenset.MCPClientAAD(issuer))
}

func (c *Connector) open(m storage.MCPClient) (credentials, error) {
	var creds credentials
	if len(m.Credentials) == 0 {
		return creds, nil
	}
	plain, err := c.vault.Open(m.Credentials, tokenset.MCPClientAAD(m.Issuer))
	if err != nil {
		return credentials{}, fmt.Errorf("opening the credentials of the MCP client for %s: %w", m.Issuer, err)
	}
	if err := json.Unmarshal(plain, &creds); err != nil {
		return credentials{}, fmt.Errorf("decoding the credentials of the MCP client for %s: %w", m.Issuer, err)
	}
	return creds, nil
}

// MetadataDocument is the broker's Client ID Metadata Document, served at
// ClientMetadataURL ("" when the document is off).
func (c *Connector) MetadataDocument() map[string]any {
	if c.cfg.ClientMetadataURL == "" {
		return nil
	}
	return map[string]any{
		"client_id": c.cfg.ClientMetadataURL, "client_name": c.cfg.ClientName,
		"redirect_uris": []string{c.cfg.RedirectURI}, "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "token_endpoint_auth_method": mcp.AuthNone,
	}
}

// StepUpLoops reports whether a step-up for requested on a connection
// holding granted would loop: the server asks for nothing the connection
// does not already have, so a new consent would bring the same token and
// the same refusal.
func StepUpLoops(granted, requested []string) bool {
	if len(requested) == 0 {
		return true
	}
	for _, s := range requested {
		if !slices.Contains(granted, s) {
			return false
		}
	}
	return true
}
