package demoprovider

import (
	"bytes"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
)

const pageTemplates = `
{{define "head"}}<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Dromos demo provider</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2433;margin:0;line-height:1.5}
main{max-width:34rem;margin:3rem auto;background:#fff;border-radius:10px;padding:2rem;box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin-top:0}
h2{font-size:1.05rem;margin-bottom:.3rem}
code{background:#eef0f4;padding:0 .25rem;border-radius:3px}
.note{color:#5b6475;font-size:.9rem;border-left:3px solid #e0a100;padding-left:.7rem}
.error{background:#fdecea;color:#8a1c12;padding:.6rem .8rem;border-radius:6px}
label{display:block;font-weight:600;margin-top:1rem}
input[type=text]{font-size:1rem;padding:.45rem;width:100%;box-sizing:border-box;border:1px solid #b7bdc9;border-radius:6px}
.hint{color:#5b6475;font-size:.85rem;margin-top:.3rem}
.actions{margin-top:1.5rem;display:flex;gap:.75rem}
button{font-size:1rem;padding:.55rem 1.3rem;border-radius:6px;border:1px solid #1f5fbf;cursor:pointer}
button.approve{background:#1f5fbf;color:#fff}
button.deny{background:#fff;color:#1f5fbf}
</style>
</head>
<body>
<main>
<h1>Dromos demo provider</h1>
<p class="note">A built-in OpenID provider for <code>dromos dev</code>. No real account is involved. Never use it in production.</p>
{{end}}

{{define "consent"}}{{template "head"}}
{{if .Problem}}<p class="error" role="alert">{{.Problem}}</p>{{end}}
<p>The application <strong>{{.ClientID}}</strong> asks for access to your demo account. Whatever you choose, you go back to <code>{{.ReturnTo}}</code>.</p>
<h2>Requested scopes</h2>
<ul>
{{range .Scopes}}<li><code>{{.Name}}</code>: {{.Description}}</li>
{{end}}</ul>
<form method="post" action="{{.Action}}">
<input type="hidden" name="request_id" value="{{.RequestID}}">
<label for="username">Sign in as</label>
<input type="text" id="username" name="username" value="{{.Username}}" maxlength="64" autocomplete="off" spellcheck="false" required>
<p class="hint">Letters, digits, dot, dash or underscore; you become <code>name@{{.EmailDomain}}</code>. Use another name to act as another user.</p>
<div class="actions">
<button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button class="deny" type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</div>
</form>
</main>
</body>
</html>
{{end}}

{{define "error"}}{{template "head"}}
<h2>This request cannot continue</h2>
<p class="error" role="alert">{{.Message}}</p>
<p>Nothing was sent back to the application. Start again from the application that sent you here.</p>
</main>
</body>
</html>
{{end}}
`

func parsePages() (*template.Template, error) {
	t, err := template.New("pages").Parse(pageTemplates)
	if err != nil {
		return nil, fmt.Errorf("demoprovider: parse page templates: %w", err)
	}
	return t, nil
}

type consentScope struct{ Name, Description string }

type consentPage struct {
	ClientID    string
	ReturnTo    string
	Scopes      []consentScope
	Action      string
	RequestID   string
	Username    string
	EmailDomain string
	Problem     string
}

func (p *Provider) newConsentPage(id string, req authRequest, username, problem string) consentPage {
	scopes := make([]consentScope, 0, len(req.scopes))
	for _, s := range req.scopes {
		desc, _ := scopeDescription(s)
		scopes = append(scopes, consentScope{Name: s, Description: desc})
	}
	returnTo := req.redirectURI
	if u, err := url.Parse(req.redirectURI); err == nil {
		returnTo = u.Scheme + "://" + u.Host
	}
	return consentPage{
		ClientID:    p.clientID,
		ReturnTo:    returnTo,
		Scopes:      scopes,
		Action:      p.endpoint("/authorize"),
		RequestID:   id,
		Username:    username,
		EmailDomain: EmailDomain,
		Problem:     problem,
	}
}

func (p *Provider) writeConsent(w http.ResponseWriter, r *http.Request, status int, page consentPage) {
	p.writePage(w, r, status, "consent", page)
}

// writeErrorPage answers a browser with a page instead of a redirect, for
// requests whose redirect target is not trusted (or gone).
func (p *Provider) writeErrorPage(w http.ResponseWriter, r *http.Request, status int, message string) {
	p.writePage(w, r, status, "error", struct{ Message string }{message})
}

func (p *Provider) writePage(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := p.pages.ExecuteTemplate(&buf, name, data); err != nil {
		p.log.ErrorContext(r.Context(), "demo provider: render page", slog.String("page", name), slog.Any("error", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	noStore(w)
	// The page holds a single-use request id: keep it out of frames (click-
	// jacking), out of Referer headers, and run no script at all.
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
