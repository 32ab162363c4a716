package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/secret"
	"github.com/dromos-dev/dromos/internal/storage"
	"github.com/dromos-dev/dromos/internal/tokenset"
)

type providerBody struct {
	Profile *provider.Profile `json:"profile"`
}

// providerView is a provider as the API shows it: the profile without its
// secret, plus what only the broker knows.
type providerView struct {
	ID string `json:"id"`
	provider.Profile
	HasClientSecret bool      `json:"has_client_secret"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// registered is a stored provider with its profile decoded.
type registered struct {
	row     storage.Provider
	profile provider.Profile
}

func (p registered) view() providerView {
	prof := p.profile
	prof.ClientSecret = ""
	return providerView{ID: p.row.ID, Profile: prof, HasClientSecret: len(p.row.ClientSecret) > 0,
		CreatedAt: p.row.CreatedAt, UpdatedAt: p.row.UpdatedAt}
}

func decodeRow(row storage.Provider) (registered, error) {
	prof, err := provider.FromStoredConfig(row.Config)
	if err != nil {
		return registered{}, err
	}
	prof.Name, prof.Aliases = row.Name, row.Aliases
	return registered{row: row, profile: prof}, nil
}

// clientSecret opens the provider's sealed client secret.
func (b *Broker) clientSecret(p registered) (secret.String, error) {
	if len(p.row.ClientSecret) == 0 {
		return "", nil
	}
	plain, err := b.vault.Open(p.row.ClientSecret, tokenset.ClientSecretAAD(p.row.ID))
	if err != nil {
		return "", fmt.Errorf("opening client secret of provider %s: %w", p.row.ID, err)
	}
	return secret.String(plain), nil
}

func (b *Broker) readProfile(w http.ResponseWriter, r *http.Request) (*provider.Profile, error) {
	var body providerBody
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.MaxBody); err != nil {
		return nil, err
	}
	if body.Profile == nil {
		return nil, httpapi.BadRequest("profile is required")
	}
	return body.Profile, nil
}

// prepareProfile expands a catalog template (explicit fields win),
// normalises and validates. storedSecret says the provider already has a
// client secret, so an omitted one is not a problem.
func (b *Broker) prepareProfile(prof *provider.Profile, storedSecret bool) error {
	standIn := prof.ClientSecret.IsEmpty() && storedSecret
	if standIn {
		prof.ClientSecret = "(stored)"
	}
	if prof.Template != "" {
		if b.catalog == nil {
			return httpapi.BadRequest("provider templates are not available in this broker")
		}
		expanded, err := b.catalog.Expand(*prof)
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
func (b *Broker) checkDiscovery(ctx context.Context, p *provider.Profile) error {
	if err := b.checkProviderEndpoints(ctx, p); err != nil {
		return err
	}
	if !p.EnableDiscovery {
		return nil
	}
	if _, err := b.disco.Fetch(ctx, p.Issuer); err != nil {
		return &httpapi.Error{Status: http.StatusBadRequest, Code: "discovery_failed",
			Message: "OIDC discovery for issuer failed: " + err.Error(), Cause: err}
	}
	return nil
}

func (b *Broker) createProvider(w http.ResponseWriter, r *http.Request) error {
	prof, err := b.readProfile(w, r)
	if err != nil {
		return err
	}
	if err := b.prepareProfile(prof, false); err != nil {
		return err
	}
	if err := b.checkDiscovery(r.Context(), prof); err != nil {
		return err
	}
	id := uuid.New().String()
	row, err := b.providerRow(id, prof, nil)
	if err != nil {
		return err
	}
	now := b.now().UTC()
	row.CreatedAt, row.UpdatedAt = now, now
	if err := b.store.CreateProvider(r.Context(), row); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return httpapi.Conflict(httpapi.CodeAlreadyExists, "a provider with that name or alias already exists")
		}
		return err
	}
	b.audit(r, storage.AuditEvent{Type: "provider.created", ProviderID: id, Detail: map[string]string{"name": prof.Name}})
	httpapi.WriteJSON(w, http.StatusCreated, registered{row: row, profile: *prof}.view())
	return nil
}

// providerRow seals the profile's secret (or keeps oldSecret when the
// profile carries none) and builds the storage row.
func (b *Broker) providerRow(id string, prof *provider.Profile, oldSecret []byte) (storage.Provider, error) {
	cfgJSON, err := prof.StoredConfig()
	if err != nil {
		return storage.Provider{}, err
	}
	row := storage.Provider{ID: id, Name: prof.Name, Aliases: prof.Aliases, Config: cfgJSON, ClientSecret: oldSecret}
	if !prof.ClientSecret.IsEmpty() {
		sealed, err := b.vault.Seal([]byte(prof.ClientSecret.Reveal()), tokenset.ClientSecretAAD(id))
		if err != nil {
			return storage.Provider{}, err
		}
		row.ClientSecret = sealed
	}
	return row, nil
}

func (b *Broker) listProviders(w http.ResponseWriter, r *http.Request) error {
	rows, err := b.store.ListProviders(r.Context())
	if err != nil {
		return err
	}
	out := make([]providerView, 0, len(rows))
	for _, row := range rows {
		p, err := decodeRow(row)
		if err != nil {
			return err
		}
		out = append(out, p.view())
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"providers": out})
	return nil
}

func (b *Broker) lookupProvider(ctx context.Context, id, name string) (registered, error) {
	var (
		row storage.Provider
		err error
	)
	if id != "" {
		if _, perr := uuid.Parse(id); perr != nil {
			return registered{}, httpapi.NotFound("provider")
		}
		row, err = b.store.GetProvider(ctx, id)
	} else {
		row, err = b.store.GetProviderByName(ctx, name)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return registered{}, httpapi.NotFound("provider")
	}
	if err != nil {
		return registered{}, err
	}
	return decodeRow(row)
}

func (b *Broker) getProvider(w http.ResponseWriter, r *http.Request) error {
	p, err := b.lookupProvider(r.Context(), r.PathValue("id"), "")
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, p.view())
	return nil
}

func (b *Broker) getProviderByName(w http.ResponseWriter, r *http.Request) error {
	p, err := b.lookupProvider(r.Context(), "", r.PathValue("name"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, p.view())
	return nil
}

func (b *Broker) updateProvider(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return httpapi.NotFound("provider")
	}
	prof, err := b.readProfile(w, r)
	if err != nil {
		return err
	}
	cur, err := b.store.GetProvider(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return httpapi.NotFound("provider")
	} else if err != nil {
		return err
	}
	// An omitted secret keeps the stored one.
	if err := b.prepareProfile(prof, len(cur.ClientSecret) > 0); err != nil {
		return err
	}
	if err := b.checkDiscovery(r.Context(), prof); err != nil {
		return err
	}
	updated, err := b.store.UpdateProvider(r.Context(), id, func(old storage.Provider) (storage.Provider, error) {
		row, err := b.providerRow(id, prof, old.ClientSecret)
		if err != nil {
			return storage.Provider{}, err
		}
		row.CreatedAt, row.UpdatedAt = old.CreatedAt, b.now().UTC()
		return row, nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return httpapi.NotFound("provider")
	case errors.Is(err, storage.ErrAlreadyExists):
		return httpapi.Conflict(httpapi.CodeAlreadyExists, "a provider with that name or alias already exists")
	case err != nil:
		return err
	}
	p, err := decodeRow(updated)
	if err != nil {
		return err
	}
	b.audit(r, storage.AuditEvent{Type: "provider.updated", ProviderID: id, Detail: map[string]string{"name": prof.Name}})
	httpapi.WriteJSON(w, http.StatusOK, p.view())
	return nil
}

func (b *Broker) deleteProvider(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return httpapi.NotFound("provider")
	}
	if err := b.store.DeleteProvider(r.Context(), id); errors.Is(err, storage.ErrNotFound) {
		return httpapi.NotFound("provider")
	} else if err != nil {
		return err
	}
	b.audit(r, storage.AuditEvent{Type: "provider.deleted", ProviderID: id})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// endpoints are a provider's resolved URLs: static ones win, discovery
// fills the rest.
type endpoints struct {
	Issuer, Auth, Token, Revocation, Userinfo, JWKS string
	IssParameter                                    bool // RFC 9207 iss on the authorization response
}

func (b *Broker) endpoints(ctx context.Context, p provider.Profile) (endpoints, error) {
	e := endpoints{Issuer: p.Issuer, Auth: p.AuthURL, Token: p.TokenURL, Revocation: p.RevocationURL,
		Userinfo: p.UserinfoURL, JWKS: p.JWKSURL}
	if !p.EnableDiscovery {
		return e, nil
	}
	md, err := b.disco.Get(ctx, p.Issuer)
	if err != nil {
		return endpoints{}, &httpapi.Error{Status: http.StatusServiceUnavailable, Code: httpapi.CodeUnavailable,
			Message: "provider discovery unavailable", RetryAfter: 5 * time.Second, Cause: err}
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&e.Auth, md.AuthorizationEndpoint)
	fill(&e.Token, md.TokenEndpoint)
	fill(&e.Revocation, md.RevocationEndpoint)
	fill(&e.Userinfo, md.UserinfoEndpoint)
	fill(&e.JWKS, md.JWKSURI)
	e.IssParameter = md.AuthorizationResponseIssParameterSupported
	return e, nil
}

// EnsureProvider registers prof, or replaces the provider already holding
// its name, with the same validation as the API. dromos dev uses it to keep
// its demo provider registered across restarts.
func (b *Broker) EnsureProvider(ctx context.Context, prof provider.Profile) (string, error) {
	if err := b.prepareProfile(&prof, false); err != nil {
		return "", err
	}
	if err := b.checkDiscovery(ctx, &prof); err != nil {
		return "", err
	}
	now := b.now().UTC()
	existing, err := b.store.GetProviderByName(ctx, prof.Name)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		id := uuid.New().String()
		row, err := b.providerRow(id, &prof, nil)
		if err != nil {
			return "", err
		}
		row.CreatedAt, row.UpdatedAt = now, now
		return id, b.store.CreateProvider(ctx, row)
	case err != nil:
		return "", err
	}
	_, err = b.store.UpdateProvider(ctx, existing.ID, func(old storage.Provider) (storage.Provider, error) {
		row, err := b.providerRow(old.ID, &prof, old.ClientSecret)
		if err != nil {
			return storage.Provider{}, err
		}
		row.CreatedAt, row.UpdatedAt = old.CreatedAt, now
		return row, nil
	})
	return existing.ID, err
}

// tokenEndpoint is the exchange endpoint of a provider, with its quirks
// (token type, nested token) switched on.
func (b *Broker) tokenEndpoint(prov registered, ends endpoints, clientSecret secret.String) exchange.Endpoint {
	ep := exchange.Endpoint{TokenURL: ends.Token, ClientID: prov.profile.ClientID, ClientSecret: clientSecret,
		AuthMethod: exchange.AuthMethod(prov.profile.TokenEndpointAuthMethod)}
	prov.profile.ConfigureEndpoint(&ep)
	return ep
}
