package registry

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dromos-dev/dromos/internal/httpapi"
	"github.com/dromos-dev/dromos/internal/provider"
	"github.com/dromos-dev/dromos/internal/storage"
)

// Routes hands each of the registry's API routes to handle, which mounts
// it behind the broker's guards and error writer.
func (g *Registry) Routes(handle func(pattern string, h func(http.ResponseWriter, *http.Request) error)) {
	handle("POST /providers", g.create)
	handle("GET /providers", g.list)
	handle("GET /providers/{id}", g.get)
	handle("GET /providers/by-name/{name}", g.getByName)
	handle("PUT /providers/{id}", g.update)
	handle("DELETE /providers/{id}", g.remove)
	handle("GET /catalog", g.listCatalog)
}

type providerBody struct {
	Profile *provider.Profile `json:"profile"`
}

// view is a provider as the API shows it: the profile without its secret,
// plus what only the broker knows.
type view struct {
	ID string `json:"id"`
	provider.Profile
	HasClientSecret bool      `json:"has_client_secret"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func (p Provider) view() view {
	prof := p.Profile
	prof.ClientSecret = ""
	return view{ID: p.Row.ID, Profile: prof, HasClientSecret: len(p.Row.ClientSecret) > 0,
		CreatedAt: p.Row.CreatedAt, UpdatedAt: p.Row.UpdatedAt}
}

// warnOpenScopes says when a provider is saved without allowed_scopes:
// agents may then send users to consent to any scope the provider knows.
func (g *Registry) warnOpenScopes(ctx context.Context, prof *provider.Profile) {
	if len(prof.AllowedScopes) == 0 {
		g.log.WarnContext(ctx, "provider has no allowed_scopes: agents may ask it for any scope", "provider", prof.Name)
	}
}

func readProfile(w http.ResponseWriter, r *http.Request) (*provider.Profile, error) {
	var body providerBody
	if err := httpapi.DecodeJSON(w, r, &body, httpapi.MaxBody); err != nil {
		return nil, err
	}
	if body.Profile == nil {
		return nil, httpapi.BadRequest("profile is required")
	}
	return body.Profile, nil
}

func (g *Registry) create(w http.ResponseWriter, r *http.Request) error {
	prof, err := readProfile(w, r)
	if err != nil {
		return err
	}
	if err := g.prepare(prof, false); err != nil {
		return err
	}
	if err := g.checkDiscovery(r.Context(), prof); err != nil {
		return err
	}
	confirmed, err := g.confirm(r.Context(), *prof)
	if err != nil {
		return err
	}
	id := uuid.New().String()
	row, err := g.row(id, prof, confirmed, nil)
	if err != nil {
		return err
	}
	now := g.now().UTC()
	row.CreatedAt, row.UpdatedAt = now, now
	if err := g.store.CreateProvider(r.Context(), row); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return httpapi.Conflict(httpapi.CodeAlreadyExists, "a provider with that name or alias already exists")
		}
		return err
	}
	g.audit(r, storage.AuditEvent{Type: "provider.created", ProviderID: id, Detail: map[string]string{"name": prof.Name}})
	g.warnOpenScopes(r.Context(), prof)
	httpapi.WriteJSON(w, http.StatusCreated, Provider{Row: row, Profile: *prof}.view())
	return nil
}

func (g *Registry) list(w http.ResponseWriter, r *http.Request) error {
	rows, err := g.store.ListProviders(r.Context())
	if err != nil {
		return err
	}
	out := make([]view, 0, len(rows))
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

func (g *Registry) get(w http.ResponseWriter, r *http.Request) error {
	p, err := g.Lookup(r.Context(), r.PathValue("id"), "")
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, p.view())
	return nil
}

func (g *Registry) getByName(w http.ResponseWriter, r *http.Request) error {
	p, err := g.Lookup(r.Context(), "", r.PathValue("name"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, p.view())
	return nil
}

func (g *Registry) update(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return providerNotFound(id)
	}
	prof, err := readProfile(w, r)
	if err != nil {
		return err
	}
	cur, err := g.store.GetProvider(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return providerNotFound(id)
	} else if err != nil {
		return err
	}
	// An omitted secret keeps the stored one.
	if err := g.prepare(prof, len(cur.ClientSecret) > 0); err != nil {
		return err
	}
	if err := g.checkDiscovery(r.Context(), prof); err != nil {
		return err
	}
	// ...but not for endpoints elsewhere: a stolen API key could otherwise
	// point the token endpoint at its own host and collect the stored
	// secret and every refresh token with the next refreshes.
	if prof.ClientSecret.IsEmpty() && len(cur.ClientSecret) > 0 {
		if moved := g.moved(r.Context(), cur, *prof); moved != "" {
			return httpapi.BadRequest("%s moves to another host: give client_secret again to send it there", moved)
		}
	}
	confirmed, err := g.confirm(r.Context(), *prof)
	if err != nil {
		return err
	}
	updated, err := g.store.UpdateProvider(r.Context(), id, func(old storage.Provider) (storage.Provider, error) {
		row, err := g.row(id, prof, confirmed, &old)
		if err != nil {
			return storage.Provider{}, err
		}
		row.CreatedAt, row.UpdatedAt = old.CreatedAt, g.now().UTC()
		return row, nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return providerNotFound(id)
	case errors.Is(err, storage.ErrAlreadyExists):
		return httpapi.Conflict(httpapi.CodeAlreadyExists, "a provider with that name or alias already exists")
	case err != nil:
		return err
	}
	p, err := decodeRow(updated)
	if err != nil {
		return err
	}
	g.audit(r, storage.AuditEvent{Type: "provider.updated", ProviderID: id, Detail: map[string]string{"name": prof.Name}})
	g.warnOpenScopes(r.Context(), prof)
	httpapi.WriteJSON(w, http.StatusOK, p.view())
	return nil
}

func (g *Registry) remove(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil {
		return providerNotFound(id)
	}
	if err := g.store.DeleteProvider(r.Context(), id); errors.Is(err, storage.ErrNotFound) {
		return providerNotFound(id)
	} else if err != nil {
		return err
	}
	g.audit(r, storage.AuditEvent{Type: "provider.deleted", ProviderID: id})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type catalogEntry struct {
	Name         string             `json:"name"`
	DisplayName  string             `json:"display_name"`
	DocsURL      string             `json:"docs_url"`
	Scopes       []string           `json:"scopes"`
	Placeholders []catalogParameter `json:"template_params"`
	Configured   bool               `json:"configured"`
}

type catalogParameter struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Example     string `json:"example,omitempty"`
}

// listCatalog is GET /catalog: the templates a provider can be registered
// from, and whether one is registered already (a provider of that name, or
// one made from that template).
func (g *Registry) listCatalog(w http.ResponseWriter, r *http.Request) error {
	if g.catalog == nil {
		return httpapi.NotFound("catalog")
	}
	rows, err := g.store.ListProviders(r.Context())
	if err != nil {
		return err
	}
	configured := map[string]bool{}
	for _, row := range rows {
		configured[row.Name] = true
		if p, err := decodeRow(row); err == nil && p.Profile.Template != "" {
			configured[p.Profile.Template] = true
		}
	}
	out := []catalogEntry{}
	for _, name := range g.catalog.Names() {
		t, _ := g.catalog.Get(name)
		e := catalogEntry{Name: t.Name, DisplayName: t.DisplayName, DocsURL: t.DocsURL, Scopes: t.Scopes,
			Placeholders: []catalogParameter{}, Configured: configured[t.Name]}
		for _, p := range t.Placeholders {
			e.Placeholders = append(e.Placeholders, catalogParameter{Name: p.Name, Description: p.Description, Example: p.Example})
		}
		out = append(out, e)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"templates": out})
	return nil
}

// moved names the first thing an update changes that decides where the
// client secret or the users' tokens go, and that therefore needs the
// secret given again; "" when nothing does. It compares the endpoints the
// broker will actually use, discovery included: an issuer whose new path
// publishes a token endpoint elsewhere moves it as surely as a new
// token_url does. Any change of issuer counts, since the issuer decides
// every discovered endpoint from then on.
func (g *Registry) moved(ctx context.Context, cur storage.Provider, next provider.Profile) string {
	old, err := decodeRow(cur)
	if err != nil {
		return "issuer"
	}
	if old.Profile.Issuer != next.Issuer || old.Profile.EnableDiscovery != next.EnableDiscovery {
		return "issuer"
	}
	was, err := g.Endpoints(ctx, old)
	if err != nil {
		return "issuer"
	}
	// What discovery says now, not what was confirmed: an update records
	// it as the new confirmed endpoints.
	will, err := g.Endpoints(ctx, Provider{Profile: next})
	if err != nil {
		return "issuer"
	}
	return movedOrigin(was, will, old.Profile.ResourcesURL, next.ResourcesURL)
}

// movedOrigin names the first resolved endpoint that receives the client
// secret or the user's tokens, or that the user is sent to, and whose
// origin differs between was and will; "" when none does.
func movedOrigin(was, will Endpoints, oldResources, nextResources string) string {
	for _, f := range []struct{ name, old, next string }{
		{"token_url", was.Token, will.Token}, {"revocation_url", was.Revocation, will.Revocation},
		{"userinfo_url", was.Userinfo, will.Userinfo}, {"auth_url", was.Auth, will.Auth},
		{"resources_url", oldResources, nextResources},
	} {
		if f.next != "" && origin(f.next) != origin(f.old) {
			return f.name
		}
	}
	return ""
}

// origin is scheme://host:port of raw, lower-case ("" when it does not
// parse or is empty).
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}
