package credential

import (
	"html/template"
	"net/http"
)

// FormAction is where the hosted key form posts.
const FormAction = "/auth/key"

// MaxFormBody bounds the form post: the fields plus the state.
const MaxFormBody = 16 << 10

// FormPage is what the hosted key form shows: the provider and the fields
// its credential type needs. State is the signed flow state the post must
// carry back; Error is shown above the fields after a refused post (never
// a submitted value).
type FormPage struct {
	Provider string
	Type     string
	State    string
	Error    string
}

var formTemplate = template.Must(template.New("key").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connect {{.Provider}}</title>
<meta name="referrer" content="no-referrer">
<style>body{font-family:system-ui,sans-serif;max-width:30rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}label{display:block;margin:1rem 0 .3rem}input{width:100%;padding:.4rem;box-sizing:border-box}
button{margin-top:1.2rem;padding:.5rem 1.2rem}.error{color:#a00}</style></head>
<body><h1>Connect {{.Provider}}</h1>
<p>{{if eq .Type "basic"}}Enter the user name and password{{else}}Enter the API key{{end}} the application may use with {{.Provider}}.
It is stored encrypted and handed only to the application that asked for it.</p>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="` + FormAction + `" autocomplete="off">
<input type="hidden" name="state" value="{{.State}}">
{{if eq .Type "basic"}}<label for="username">User name</label><input id="username" name="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" required>
{{else}}<label for="api_key">API key</label><input id="api_key" name="api_key" type="password" required>
{{end}}<button type="submit">Connect</button>
</form></body></html>
`))

// WriteForm answers with the form page and the given status.
func WriteForm(w http.ResponseWriter, status int, p FormPage) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// No form-action: browsers apply it to the redirect back to the
	// application after the post too.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = formTemplate.Execute(w, p)
}

// FormFields picks the credential fields of typ from a parsed form post,
// for Parse: only the names typ takes, so an extra field cannot make Parse
// refuse a good credential and a missing one reads as empty.
func FormFields(typ string, get func(string) string) map[string]string {
	names := []string{"api_key"}
	if typ == TypeBasic {
		names = []string{"username", "password"}
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		out[n] = get(n)
	}
	return out
}
