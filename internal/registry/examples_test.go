package registry_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// Every provider profile shipped under examples/ (the files the docs use,
// such as `dromos providers add --file examples/slack.json`) registers as
// is, with the secret given separately as the CLI adds it.
func TestExampleProfilesRegister(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no example profiles found under examples/")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if inner, ok := doc["profile"].(map[string]any); ok && len(doc) == 1 {
				doc = inner
			}
			if _, has := doc["client_secret"]; has {
				t.Fatal("an example ships a client secret; it must come from --client-secret-file")
			}
			doc["client_secret"] = "example-secret"
			f := newFixture(t, false)
			st, body := f.do(t, "POST", "/providers", map[string]any{"profile": doc})
			if st != http.StatusCreated {
				t.Fatalf("registration refused: %d %v", st, body)
			}
			if body["name"] != doc["name"] {
				t.Fatalf("registered as %v", body["name"])
			}
		})
	}
}
