package catalog

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/CATALOG.md from the catalog")

const docPath = "../../docs/CATALOG.md"

// TestCatalogDoc keeps docs/CATALOG.md equal to what the catalog renders.
func TestCatalogDoc(t *testing.T) {
	want := mustLoad(t).Markdown()
	if *update {
		if err := os.WriteFile(filepath.FromSlash(docPath), []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(filepath.FromSlash(docPath))
	if err != nil {
		t.Fatalf("reading docs/CATALOG.md: %v (create it with: go test ./internal/catalog -run TestCatalogDoc -update)", err)
	}
	if string(got) != want {
		t.Fatalf("docs/CATALOG.md is out of date with internal/catalog/catalog.json; regenerate it with:\n" +
			"  go test ./internal/catalog -run TestCatalogDoc -update")
	}
}

func TestMarkdownCoversEveryTemplate(t *testing.T) {
	c := mustLoad(t)
	md := c.Markdown()
	for _, name := range c.Names() {
		tmpl, _ := c.Get(name)
		for _, want := range []string{`<a id="` + name + `"></a>`, tmpl.DocsURL, tmpl.Offline, `"template": "` + name + `"`} {
			if !strings.Contains(md, want) {
				t.Errorf("%s: the document lacks %q", name, want)
			}
		}
		for _, ph := range tmpl.Placeholders {
			if !strings.Contains(md, "`{"+ph.Name+"}` ("+ph.Kind+")") {
				t.Errorf("%s: placeholder %s undocumented", name, ph.Name)
			}
		}
	}
}
