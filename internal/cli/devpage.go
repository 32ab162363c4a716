package cli

import (
	"html/template"
	"net/http"
	"regexp"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

var devReturn = template.Must(template.New("r").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dromos dev: {{.Status}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}
code{background:#f3f3f3;padding:.1rem .3rem}</style></head><body>
{{if eq .Status "success"}}<h1>Connected</h1>
<p>Connection <code>{{.ID}}</code> is active. Your agent keeps only this id; fetch a token with it whenever it needs one.</p>
{{else}}<h1>Not connected</h1><p>The connection {{if .ID}}<code>{{.ID}}</code> {{end}}failed: <code>{{.Error}}</code>.</p>{{end}}
<p>This page is the <code>return_url</code> of the banner's example; an agent would use its own.</p>
</body></html>
`))

// devReturnPage is the example return_url of dromos dev: it shows the
// outcome a real agent would read from the query.
func devReturnPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	data := struct{ Status, ID, Error string }{Status: "error", Error: "unknown"}
	if q.Get("status") == "success" {
		data.Status = "success"
	}
	if id := q.Get("connection_id"); uuidRE.MatchString(id) {
		data.ID = id
	}
	if e := q.Get("error"); e != "" && len(e) <= 64 {
		data.Error = e
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = devReturn.Execute(w, data)
}
