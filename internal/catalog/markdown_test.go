package catalog

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated catalog section of docs/PROVIDERS.md")

const (
	docPath = "../../docs/PROVIDERS.md"

	// The generated part of docs/PROVIDERS.md is the text between these two
	// lines; everything outside them is hand-written and left alone.
	docBegin = "<!-- BEGIN GENERATED CATALOG: go test ./internal/catalog -run TestCatalogDoc -update -->"
	docEnd   = "<!-- END GENERATED CATALOG -->"

	regenerate = "go test ./internal/catalog -run TestCatalogDoc -update"
)

// generatedSection locates the generated part of doc: from the line after
// the BEGIN marker up to the start of the END marker line. Each marker must
// appear exactly once, on a line of its own, BEGIN before END.
func generatedSection(doc string) (start, end int, err error) {
	find := func(marker string) (int, error) {
		if n := strings.Count(doc, marker); n != 1 {
			return 0, fmt.Errorf("docs/PROVIDERS.md must contain the marker line\n  %s\nexactly once; found it %d times. "+
				"Put the BEGIN and END GENERATED CATALOG lines around the generated section "+
				"(nothing between them is fine) and run:\n  %s", marker, n, regenerate)
		}
		i := strings.Index(doc, marker)
		if (i > 0 && doc[i-1] != '\n') || !strings.HasPrefix(doc[i+len(marker):], "\n") {
			return 0, fmt.Errorf("docs/PROVIDERS.md: the marker %s must be a line of its own", marker)
		}
		return i, nil
	}
	b, err := find(docBegin)
	if err != nil {
		return 0, 0, err
	}
	e, err := find(docEnd)
	if err != nil {
		return 0, 0, err
	}
	if e < b {
		return 0, 0, fmt.Errorf("docs/PROVIDERS.md: the END GENERATED CATALOG line comes before the BEGIN line")
	}
	return b + len(docBegin) + 1, e, nil
}

// TestCatalogDoc keeps the generated section of docs/PROVIDERS.md equal to
// what the catalog renders; with -update it rewrites that section only.
func TestCatalogDoc(t *testing.T) {
	want := mustLoad(t).Markdown()
	path := filepath.FromSlash(docPath)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading docs/PROVIDERS.md: %v", err)
	}
	doc := string(raw)
	start, end, err := generatedSection(doc)
	if err != nil {
		t.Fatal(err)
	}
	if doc[start:end] == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(doc[:start]+want+doc[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("the generated catalog section of docs/PROVIDERS.md is out of date with internal/catalog/catalog.json; regenerate it with:\n  %s", regenerate)
}

var (
	headingLine = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	anchorTag   = regexp.MustCompile(`<a id="([^"]+)"></a>`)
	notSlug     = regexp.MustCompile(`[^\p{L}\p{N}\s_-]`)
)

// TestProvidersDocAnchors checks that every per-provider anchor in
// docs/PROVIDERS.md is unique and does not share its name with the
// anchor GitHub derives from a heading (the hand-written "### Google"
// would otherwise capture the catalog's #google links).
func TestProvidersDocAnchors(t *testing.T) {
	raw, err := os.ReadFile(filepath.FromSlash(docPath))
	if err != nil {
		t.Fatalf("reading docs/PROVIDERS.md: %v", err)
	}
	headings := map[string]string{}
	fenced := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if m := headingLine.FindStringSubmatch(line); m != nil && !fenced {
			slug := strings.ReplaceAll(strings.ToLower(notSlug.ReplaceAllString(m[1], "")), " ", "-")
			headings[slug] = line
		}
	}
	seen := map[string]bool{}
	for _, m := range anchorTag.FindAllStringSubmatch(string(raw), -1) {
		id := m[1]
		if seen[id] {
			t.Errorf("docs/PROVIDERS.md: anchor %q appears twice", id)
		}
		seen[id] = true
		if h, ok := headings[id]; ok {
			t.Errorf("docs/PROVIDERS.md: anchor %q collides with the heading %q; rename the heading", id, h)
		}
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
