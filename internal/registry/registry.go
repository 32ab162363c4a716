package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/binding"
	"github.com/dromos-dev/dromos/internal/catalog"
	"github.com/dromos-dev/dromos/internal/discovery"
	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/promreg"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/secret"
	"github.com/dromos-dev/dromos/internal/storage"
)

// Store is the part of storage.Storage the registry uses.
type Store interface {
	CreateProvider(ctx context.Context, p storage.Provider) error
	GetProvider(ctx context.Context, id string) (storage.Provider, error)
	GetProviderByName(ctx context.Context, name string) (storage.Provider, error)
	ListProviders(ctx context.Context) ([]storage.Provider, error)
	UpdateProvider(ctx context.Context, id string, fn func(storage.Provider) (storage.Provider, error)) (storage.Provider, error)
	DeleteProvider(ctx context.Context, id string) error
}

// Sealer seals and opens client secrets (the vault's key ring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(ciphertext, aad []byte) ([]byte, error)
}

// Discovery reads issuers' metadata: Get may answer from its cache, Fetch
// always asks the issuer.
type Discovery interface {
	Get(ctx context.Context, issuer string) (discovery.Metadata, error)
	Fetch(ctx context.Context, issuer string) (discovery.Metadata, error)
}

// Deps are the registry's collaborators.
type Deps struct {
	Store     Store
	Vault     Sealer
	Discovery Discovery
	// Catalog resolves provider templates; nil disables them.
	Catalog *catalog.Catalog
	// NetGuard (production) refuses provider endpoints that are not https
	// or that resolve to non-public addresses.
	NetGuard bool
	// ExplainErrors (outside production) adds the full cause of a failed
	// discovery, addresses included, to the answer.
	ExplainErrors bool
	// Audit records an event of an API request.
	Audit func(*http.Request, storage.AuditEvent)
	Now   func() time.Time
	// Logger and Registerer record refused endpoint moves; nil means none.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Registry is the set of registered providers.
type Registry struct {
	store    Store
	vault    Sealer
	disco    Discovery
	catalog  *catalog.Catalog
	netGuard bool
	explain  bool
	audit    func(*http.Request, storage.AuditEvent)
	now      func() time.Time
	log      *slog.Logger
	moves    *prometheus.CounterVec
}

// New builds a registry; Store, Vault and Discovery are required.
func New(d Deps) (*Registry, error) {
	if d.Store == nil || d.Vault == nil || d.Discovery == nil {
		return nil, errors.New("registry: Store, Vault and Discovery are required")
	}
	if d.Audit == nil {
		d.Audit = func(*http.Request, storage.AuditEvent) {}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	moves := promreg.Register(d.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "provider_endpoint_moves_refused_total",
		Help: "Discovered provider endpoints refused because they moved to a host no operator confirmed; the confirmed endpoint was used.",
	}, []string{"endpoint"}))
	return &Registry{store: d.Store, vault: d.Vault, disco: d.Discovery, catalog: d.Catalog,
		netGuard: d.NetGuard, explain: d.ExplainErrors, audit: d.Audit, now: d.Now, log: d.Logger, moves: moves}, nil
}

// Provider is a stored provider with its profile decoded.
type Provider struct {
	Row     storage.Provider
	Profile provider.Profile
}

func decodeRow(row storage.Provider) (Provider, error) {
	prof, err := provider.FromStoredConfig(row.Config)
	if err != nil {
		return Provider{}, err
	}
	prof.Name, prof.Aliases = row.Name, row.Aliases
	return Provider{Row: row, Profile: prof}, nil
}

// MovesRefused is provider_endpoint_moves_refused_total, by endpoint.
func (g *Registry) MovesRefused() *prometheus.CounterVec { return g.moves }

// Lookup finds a provider by id or, when id is empty, by name or alias.
// An unknown one is an httpapi 404.
func (g *Registry) Lookup(ctx context.Context, id, name string) (Provider, error) {
	var (
		row storage.Provider
		err error
	)
	if id != "" {
		if _, perr := uuid.Parse(id); perr != nil {
			return Provider{}, providerNotFound(id)
		}
		row, err = g.store.GetProvider(ctx, id)
	} else {
		row, err = g.store.GetProviderByName(ctx, name)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return Provider{}, providerNotFound(firstNonEmpty(id, name))
	}
	if err != nil {
		return Provider{}, err
	}
	return decodeRow(row)
}

// ClientSecret opens the provider's sealed client secret ("" when it has
// none).
func (g *Registry) ClientSecret(p Provider) (secret.String, error) {
	if len(p.Row.ClientSecret) == 0 {
		return "", nil
	}
	aad, err := binding.SecretAADFor(p.Row)
	if err != nil {
		return "", err
	}
	plain, err := g.vault.Open(p.Row.ClientSecret, aad)
	if err != nil {
		// Also what an edit of the provider's endpoints in the database
		// leads to: the secret is bound to them.
		return "", fmt.Errorf("opening client secret of provider %s: %w", p.Row.ID, err)
	}
	return secret.String(plain), nil
}

// Endpoints are a provider's resolved URLs: static ones win, discovery
// fills the rest.
type Endpoints struct {
	Issuer, Auth, Token, Revocation, Userinfo, JWKS string
	IssParameter                                    bool // RFC 9207 iss on the authorization response
	// PAR is the pushed authorization request endpoint (RFC 9126), ""
	// when the provider has none; RequirePAR says the provider accepts
	// only pushed requests.
	PAR        string
	RequirePAR bool
	// Device is the device authorization endpoint (RFC 8628), "" when
	// the provider has none.
	Device string
}

// Endpoints resolves p's URLs. Discovery that cannot be reached is an
// httpapi 503 with Retry-After.
func (g *Registry) Endpoints(ctx context.Context, prov Provider) (Endpoints, error) {
	p := prov.Profile
	e := Endpoints{Issuer: p.Issuer, Auth: p.AuthURL, Token: p.TokenURL, Revocation: p.RevocationURL,
		Userinfo: p.UserinfoURL, JWKS: p.JWKSURL, PAR: p.PARURL, Device: p.DeviceAuthorizationURL}
	if !p.EnableDiscovery {
		return e, nil
	}
	md, err := g.disco.Get(ctx, p.Issuer)
	if err != nil {
		return Endpoints{}, &httpapi.Error{Status: http.StatusServiceUnavailable, Code: httpapi.CodeUnavailable,
			Message: "provider discovery unavailable", RetryAfter: 5 * time.Second, Cause: err}
	}
	conf, err := decodeConfirmed(prov.Row.Endpoints)
	if err != nil {
		return Endpoints{}, err
	}
	fill := func(name string, dst *string, discovered, confirmed string) {
		if *dst != "" {
			return
		}
		*dst = discovered
		if conf == nil || discovered == "" || conf.hostKnown(discovered) {
			return
		}
		// The issuer now names a host nobody confirmed: keep using the
		// confirmed endpoint until an operator re-submits the provider
		// with its secret.
		*dst = confirmed
		g.moves.WithLabelValues(name).Inc()
		g.log.WarnContext(ctx, "refused a discovered endpoint on an unconfirmed host; using the confirmed one",
			"provider_id", prov.Row.ID, "endpoint", name, "discovered_origin", origin(discovered), "confirmed", confirmed)
	}
	fill("authorization", &e.Auth, md.AuthorizationEndpoint, confAuth(conf))
	fill("token", &e.Token, md.TokenEndpoint, confToken(conf))
	fill("revocation", &e.Revocation, md.RevocationEndpoint, confRevocation(conf))
	fill("userinfo", &e.Userinfo, md.UserinfoEndpoint, confUserinfo(conf))
	// The client authenticates at the PAR endpoint as at the token
	// endpoint: one on a host nobody confirmed is not used at all (a
	// provider that requires PAR then fails consents until an operator
	// re-submits it).
	fill("pushed_authorization", &e.PAR, md.PushedAuthorizationRequestEndpoint, "")
	e.RequirePAR = md.RequirePushedAuthorizationRequests
	// The client authenticates at the device endpoint too: the same rule
	// as PAR.
	fill("device_authorization", &e.Device, md.DeviceAuthorizationEndpoint, "")
	if e.JWKS == "" {
		e.JWKS = md.JWKSURI
	}
	e.IssParameter = md.AuthorizationResponseIssParameterSupported
	return e, nil
}

// TokenEndpoint is the exchange endpoint of the provider, with its quirks
// (token type, nested token, JSON body) switched on.
func (p Provider) TokenEndpoint(ends Endpoints, clientSecret secret.String) exchange.Endpoint {
	ep := exchange.Endpoint{TokenURL: ends.Token, ClientID: p.Profile.ClientID, ClientSecret: clientSecret,
		AuthMethod: exchange.AuthMethod(p.Profile.TokenEndpointAuthMethod)}
	p.Profile.ConfigureEndpoint(&ep)
	return ep
}

// prepare expands a catalog template (explicit fields win), normalises and
// validates. storedSecret says the provider already has a client secret,
// so an omitted one is not a problem.
func (g *Registry) prepare(prof *provider.Profile, storedSecret bool) error {
	standIn := prof.ClientSecret.IsEmpty() && storedSecret
	if standIn {
		prof.ClientSecret = "(stored)"
	}
	if prof.Template != "" {
		if g.catalog == nil {
			return httpapi.BadRequest("provider templates are not available in this broker")
		}
		expanded, err := g.catalog.Expand(*prof)
		if err != nil {
			var ve *provider.ValidationError
			if errors.As(err, &ve) {
				return validationErr(err)
			}
			return httpapi.BadRequest("%s", err.Error())
		}
		*prof = expanded
	}
	prof.Normalize()
	err := prof.Validate()
	if standIn {
		prof.ClientSecret = ""
	}
	return validationErr(err)
}

func validationErr(err error) error {
	var ve *provider.ValidationError
	if errors.As(err, &ve) {
		return &httpapi.Error{Status: http.StatusBadRequest, Code: httpapi.CodeBadRequest, Message: ve.Error(),
			Extra: map[string]any{"problems": ve.Problems}}
	}
	return err
}

// checkDiscovery fetches the issuer's metadata now, so a provider whose
// issuer is down or lying is reported at registration rather than
// half-configured.
func (g *Registry) checkDiscovery(ctx context.Context, p *provider.Profile) error {
	if err := g.checkEndpoints(ctx, p); err != nil {
		return err
	}
	if !p.EnableDiscovery {
		return nil
	}
	if _, err := g.disco.Fetch(ctx, p.Issuer); err != nil {
		return &httpapi.Error{Status: http.StatusBadRequest, Code: "discovery_failed",
			Message: g.discoveryMessage(err), Cause: err}
	}
	return nil
}

// row builds the storage row for prof with the endpoints confirmed for it,
// and seals the client secret bound to both: the profile's secret, or
// old's (re-sealed under the new binding) when the profile carries none.
func (g *Registry) row(id string, prof *provider.Profile, confirmed []byte, old *storage.Provider) (storage.Provider, error) {
	cfgJSON, err := prof.StoredConfig()
	if err != nil {
		return storage.Provider{}, err
	}
	row := storage.Provider{ID: id, Name: prof.Name, Aliases: prof.Aliases, Config: cfgJSON, Endpoints: confirmed}
	var plain []byte
	switch {
	case !prof.ClientSecret.IsEmpty():
		plain = []byte(prof.ClientSecret.Reveal())
	case old != nil && len(old.ClientSecret) > 0:
		aad, err := binding.SecretAADFor(*old)
		if err != nil {
			return storage.Provider{}, err
		}
		if plain, err = g.vault.Open(old.ClientSecret, aad); err != nil {
			return storage.Provider{}, fmt.Errorf("opening client secret of provider %s: %w", id, err)
		}
	default:
		return row, nil
	}
	aad, err := binding.SecretAAD(row)
	if err != nil {
		return storage.Provider{}, err
	}
	if row.ClientSecret, err = g.vault.Seal(plain, aad); err != nil {
		return storage.Provider{}, err
	}
	row.SecretAADVersion = binding.Version
	return row, nil
}

// Ensure registers prof, or replaces the provider already holding its
// name, with the same validation as the API. dromos dev uses it to keep its
// demo provider registered across restarts.
func (g *Registry) Ensure(ctx context.Context, prof provider.Profile) (string, error) {
	if err := g.prepare(&prof, false); err != nil {
		return "", err
	}
	if err := g.checkDiscovery(ctx, &prof); err != nil {
		return "", err
	}
	confirmed, err := g.confirm(ctx, prof)
	if err != nil {
		return "", err
	}
	now := g.now().UTC()
	existing, err := g.store.GetProviderByName(ctx, prof.Name)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		id := uuid.New().String()
		row, err := g.row(id, &prof, confirmed, nil)
		if err != nil {
			return "", err
		}
		row.CreatedAt, row.UpdatedAt = now, now
		return id, g.store.CreateProvider(ctx, row)
	case err != nil:
		return "", err
	}
	_, err = g.store.UpdateProvider(ctx, existing.ID, func(old storage.Provider) (storage.Provider, error) {
		row, err := g.row(old.ID, &prof, confirmed, &old)
		if err != nil {
			return storage.Provider{}, err
		}
		row.CreatedAt, row.UpdatedAt = old.CreatedAt, now
		return row, nil
	})
	return existing.ID, err
}

// maxNameInMessage bounds the asked-for name an error message repeats.
const maxNameInMessage = 80

// providerNotFound is the 404 for a provider id or name, naming what was
// asked for (quoted, so control characters arrive escaped, and shortened)
// so that a typo is visible in the answer.
func providerNotFound(asked string) *httpapi.Error {
	if r := []rune(asked); len(r) > maxNameInMessage {
		asked = string(r[:maxNameInMessage]) + "…"
	}
	e := httpapi.NotFound("provider")
	e.Message = fmt.Sprintf("provider %q not found", asked)
	return e
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// discoveryMessage says why discovery failed at registration. The reason
// class ("discovery: HTTP 404") is always given: it tells the operator
// whether to fix the issuer, the network or the provider. The full cause
// (the document URL, a dial error naming an address) is given only when
// the registry was told to explain errors, outside production; otherwise
// it stays in the log.
func (g *Registry) discoveryMessage(err error) string {
	reason := discovery.Reason(err)
	if reason == "" {
		reason = "failed"
	}
	msg := "OIDC discovery for the issuer failed: discovery: " + reason
	if g.explain {
		return msg + " (" + err.Error() + ")"
	}
	return msg + " (the broker's log has the details)"
}
