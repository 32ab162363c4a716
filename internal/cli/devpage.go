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
code{background:#f3f3f3;padding:.1rem .3rem}button{font-size:1rem;padding:.5rem 1rem}</style></head><body>
{{if eq .Status "success"}}<h1>Connected</h1>
<p>Connection <code>{{.ID}}</code> is active. Your agent keeps only this id; fetch a token with it whenever it needs one.</p>
{{else if eq .Status "confirm"}}<h1>Confirm the connection</h1>
<p>Consent is done. Connection <code>{{.ID}}</code> serves no token until the application confirms its user
{{- if .User}} (<code>{{.User}}</code>){{end}} and this browser comes back to the broker.</p>
<form method="post" action="/dev/confirm"><input type="hidden" name="confirmation" value="{{.Confirmation}}">
<button class="confirm" type="submit">Confirm{{if .User}} as {{.User}}{{end}}</button></form>
<p>Development only: this page confirms the user the flow was started for. A real application confirms the user
signed in to it (<code>POST /v1/confirm-connection</code>) and sends the browser to the <code>continue_url</code> it gets back.</p>
{{else}}<h1>Not connected</h1><p>The connection {{if .ID}}<code>{{.ID}}</code> {{end}}failed: <code>{{.Error}}</code>.</p>{{end}}
<p>This page is the <code>return_url</code> (and <code>confirm_url</code>) of the banner's example; an agent would use its own.</p>
</body></html>
`))

// devPage is what the dev return page shows.
type devPage struct {
	Status, ID, Error string
	// User and Confirmation: the confirm variant.
	User, Confirmation string
}

// writeDevPage writes the page. It may hold a confirmation value, so it
// is never cached and never sent on as a referrer.
func writeDevPage(w http.ResponseWriter, status int, p devPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = devReturn.Execute(w, p)
}
