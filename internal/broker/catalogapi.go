package broker

import (
	"net/http"

	"github.com/dromos-dev/dromos/internal/httpapi"
)

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
func (b *Broker) listCatalog(w http.ResponseWriter, r *http.Request) error {
	if b.catalog == nil {
		return httpapi.NotFound("catalog")
	}
	rows, err := b.store.ListProviders(r.Context())
	if err != nil {
		return err
	}
	configured := map[string]bool{}
	for _, row := range rows {
		configured[row.Name] = true
		if p, err := decodeRow(row); err == nil && p.profile.Template != "" {
			configured[p.profile.Template] = true
		}
	}
	out := []catalogEntry{}
	for _, name := range b.catalog.Names() {
		t, _ := b.catalog.Get(name)
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
