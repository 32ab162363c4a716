package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/config"
)

func runProviders(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	return runGroup(ctx, "providers", "Manages the OAuth providers registered at the broker.", []subcommand{
		{"add", "register a provider from flags or a profile file", runProvidersAdd},
		{"list", "list registered providers", runProvidersList},
		{"show", "show one provider by name or alias", runProvidersShow},
		{"remove", "remove a provider by name or alias", runProvidersRemove},
		{"catalog", "list the built-in provider templates and which are configured", runProvidersCatalog},
	}, args, ios, env)
}

// providerInfo is what the tables show of a broker provider; JSON output
// passes the broker's own objects through instead, so no field is lost.
type providerInfo struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	DisplayName     string    `json:"display_name"`
	Aliases         []string  `json:"aliases"`
	Issuer          string    `json:"issuer"`
	EnableDiscovery bool      `json:"enable_discovery"`
	AuthURL         string    `json:"auth_url"`
	TokenURL        string    `json:"token_url"`
	UserinfoURL     string    `json:"userinfo_url"`
	RevocationURL   string    `json:"revocation_url"`
	ClientID        string    `json:"client_id"`
	HasClientSecret bool      `json:"has_client_secret"`
	Scopes          []string  `json:"scopes"`
	AllowedScopes   []string  `json:"allowed_scopes"`
	AuthMethod      string    `json:"token_endpoint_auth_method"`
	Quirks          []string  `json:"quirks"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

func (p providerInfo) endpoint() string {
	if p.EnableDiscovery {
		return p.Issuer
	}
	return p.AuthURL
}

func runProvidersList(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var o opsFlags
	fs := newFlags("providers list", "Lists the providers registered at the broker. Client secrets are never shown.", brokerEnvHelp, ios)
	o.register(fs)
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	bc, err := o.client(env)
	if err != nil {
		return err
	}
	var out struct {
		Providers []json.RawMessage `json:"providers"`
	}
	if err := bc.do(ctx, http.MethodGet, "/providers", nil, &out); err != nil {
		return err
	}
	if o.json {
		if out.Providers == nil {
			out.Providers = []json.RawMessage{}
		}
		return printJSON(ios.out, out.Providers)
	}
	rows := [][]string{{"NAME", "DISPLAY NAME", "ISSUER / AUTH URL", "SCOPES", "SECRET", "ID"}}
	for _, raw := range out.Providers {
		var p providerInfo
		if err := json.Unmarshal(raw, &p); err != nil {
			return fmt.Errorf("the broker's provider list is not the JSON expected: %w", err)
		}
		rows = append(rows, []string{p.Name, orDash(p.DisplayName), orDash(p.endpoint()), orDash(strings.Join(p.Scopes, " ")),
			yesNo(p.HasClientSecret), p.ID})
	}
	return table(ios.out, rows)
}

func runProvidersCatalog(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var o opsFlags
	fs := newFlags("providers catalog", "Lists the provider templates built into the broker; register one with\n"+
		"dromos providers add --template NAME --client-id ID --client-secret-file FILE [--param KEY=VALUE].", brokerEnvHelp, ios)
	o.register(fs)
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	bc, err := o.client(env)
	if err != nil {
		return err
	}
	var out struct {
		Templates []json.RawMessage `json:"templates"`
	}
	if err := bc.do(ctx, http.MethodGet, "/catalog", nil, &out); err != nil {
		return err
	}
	if o.json {
		return printJSON(ios.out, out.Templates)
	}
	rows := [][]string{{"TEMPLATE", "DISPLAY NAME", "PARAMETERS", "CONFIGURED"}}
	for _, raw := range out.Templates {
		var t struct {
			Name         string `json:"name"`
			DisplayName  string `json:"display_name"`
			Configured   bool   `json:"configured"`
			Placeholders []struct {
				Name string `json:"name"`
			} `json:"template_params"`
		}
		if err := json.Unmarshal(raw, &t); err != nil {
			return fmt.Errorf("the broker's catalog is not the JSON expected: %w", err)
		}
		var params []string
		for _, p := range t.Placeholders {
			params = append(params, p.Name)
		}
		rows = append(rows, []string{t.Name, orDash(t.DisplayName), orDash(strings.Join(params, ", ")), yesNo(t.Configured)})
	}
	return table(ios.out, rows)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// providerByName fetches a provider by name or alias, raw and decoded.
func providerByName(ctx context.Context, bc *brokerClient, name string) (json.RawMessage, providerInfo, error) {
	var raw json.RawMessage
	if err := bc.do(ctx, http.MethodGet, "/providers/by-name/"+url.PathEscape(name), nil, &raw); err != nil {
		if isNotFound(err) {
			return nil, providerInfo{}, fmt.Errorf("no provider named %q", name)
		}
		return nil, providerInfo{}, err
	}
	var p providerInfo
	if err := json.Unmarshal(raw, &p); err != nil || p.ID == "" {
		return nil, providerInfo{}, errors.New("the broker's provider answer is not the JSON expected")
	}
	return raw, p, nil
}

func runProvidersShow(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var o opsFlags
	fs := newFlags("providers show NAME", "Shows one provider, found by name or alias (case-insensitive).", brokerEnvHelp, ios)
	o.register(fs)
	pos, err := parseArgs(fs, args, 1, "one provider NAME")
	if err != nil {
		return err
	}
	bc, err := o.client(env)
	if err != nil {
		return err
	}
	raw, p, err := providerByName(ctx, bc, pos[0])
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(ios.out, raw)
	}
	return fields(ios.out, [][2]string{
		{"NAME", p.Name}, {"DISPLAY NAME", p.DisplayName}, {"ID", p.ID}, {"ALIASES", strings.Join(p.Aliases, ", ")},
		{"ISSUER", p.Issuer}, {"DISCOVERY", yesNo(p.EnableDiscovery)}, {"AUTH URL", p.AuthURL}, {"TOKEN URL", p.TokenURL},
		{"USERINFO URL", p.UserinfoURL}, {"REVOCATION URL", p.RevocationURL}, {"CLIENT ID", p.ClientID},
		{"CLIENT SECRET", map[bool]string{true: "set (never shown)", false: "none"}[p.HasClientSecret]},
		{"SCOPES", strings.Join(p.Scopes, " ")}, {"ALLOWED SCOPES", allowedScopes(p.AllowedScopes)}, {"AUTH METHOD", p.AuthMethod}, {"QUIRKS", strings.Join(p.Quirks, ", ")},
		{"CREATED", stamp(p.CreatedAt)}, {"UPDATED", stamp(p.UpdatedAt)},
	})
}

// allowedScopes shows an allowlist; an empty one allows every scope.
func allowedScopes(list []string) string {
	if len(list) == 0 {
		return "any (no allowed_scopes)"
	}
	return strings.Join(list, " ")
}

func runProvidersRemove(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var o opsFlags
	fs := newFlags("providers remove NAME", "Removes a provider, found by name or alias. Its connections stop working.", brokerEnvHelp, ios)
	o.register(fs)
	pos, err := parseArgs(fs, args, 1, "one provider NAME")
	if err != nil {
		return err
	}
	bc, err := o.client(env)
	if err != nil {
		return err
	}
	_, p, err := providerByName(ctx, bc, pos[0])
	if err != nil {
		return err
	}
	if err := bc.do(ctx, http.MethodDelete, "/providers/"+url.PathEscape(p.ID), nil, nil); err != nil {
		return err
	}
	if o.json {
		return printJSON(ios.out, map[string]string{"removed": p.Name, "id": p.ID})
	}
	fmt.Fprintf(ios.out, "provider %s removed (id %s)\n", printable(p.Name), printable(p.ID))
	return nil
}

// listFlag collects a comma- or space-separated list from one or more uses
// of a flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })...)
	return nil
}

// pairFlag collects KEY=VALUE pairs.
type pairFlag map[string]string

func (p pairFlag) String() string { return "" }
func (p pairFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return errors.New("want KEY=VALUE")
	}
	p[k] = val
	return nil
}

type addFlags struct {
	opsFlags
	file, template, name, displayName, issuer, resourcesURL          string
	noDiscovery                                                      bool
	authURL, tokenURL, userinfoURL, revocationURL, jwksURL, authMeth string
	clientID, clientSecret, clientSecretFile                         string
	aliases, scopes, allowedScopes, quirks                           listFlag
	authParams, params, tokenHeaders                                 pairFlag
}

func runProvidersAdd(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	f := addFlags{authParams: pairFlag{}, params: pairFlag{}, tokenHeaders: pairFlag{}}
	fs := newFlags("providers add", "Registers a provider at the broker, from flags or from a profile file (the JSON profile of\n"+
		"docs/BROKER_API.md, bare or as {\"profile\":{…}}). With --template a catalog entry fills in the rest\n"+
		"(`dromos providers catalog` lists them); flags given explicitly override it.\n"+
		"With --issuer the endpoints come from OIDC discovery.\n"+
		"Prefer --client-secret-file or --file: a secret on the command line lands in shell history.", brokerEnvHelp, ios)
	f.register(fs)
	fs.StringVar(&f.file, "file", "", "profile JSON file; --client-secret/--client-secret-file may add the secret")
	fs.StringVar(&f.template, "template", "", "catalog template to start from, e.g. slack, google, okta")
	fs.Var(f.params, "param", "template parameter KEY=VALUE, e.g. domain=acme.okta.com (repeatable)")
	fs.StringVar(&f.name, "name", "", "provider name: a-z 0-9 . _ - (default: the template's)")
	fs.StringVar(&f.displayName, "display-name", "", "name shown to people")
	fs.Var(&f.aliases, "aliases", "other names, comma-separated")
	fs.StringVar(&f.issuer, "issuer", "", "OIDC issuer URL (discovery on unless --no-discovery)")
	fs.BoolVar(&f.noDiscovery, "no-discovery", false, "do not use OIDC discovery for --issuer (no effect with a --template that uses discovery)")
	fs.StringVar(&f.authURL, "auth-url", "", "authorization endpoint (static registration)")
	fs.StringVar(&f.tokenURL, "token-url", "", "token endpoint (static registration)")
	fs.StringVar(&f.userinfoURL, "userinfo-url", "", "userinfo endpoint")
	fs.StringVar(&f.revocationURL, "revocation-url", "", "revocation endpoint")
	fs.StringVar(&f.jwksURL, "jwks-url", "", "JWKS URL")
	fs.StringVar(&f.resourcesURL, "resources-url", "", "where a resource lookup quirk reads sites or tenants (atlassian_resources, xero_tenants)")
	fs.StringVar(&f.clientID, "client-id", "", "OAuth client id")
	fs.StringVar(&f.clientSecret, "client-secret", "", "OAuth client secret")
	fs.StringVar(&f.clientSecretFile, "client-secret-file", "", "file holding the OAuth client secret")
	fs.Var(&f.scopes, "scopes", "default scopes, comma- or space-separated")
	fs.Var(&f.allowedScopes, "allowed-scopes", "the only scopes agents may ask for, comma- or space-separated; an entry ending in * allows a prefix (default: any)")
	fs.StringVar(&f.authMeth, "auth-method", "", "client_secret_basic, client_secret_post, auto or none")
	fs.Var(&f.quirks, "quirks", "named provider behaviours, comma-separated")
	fs.Var(f.authParams, "auth-param", "extra authorization parameter KEY=VALUE (repeatable)")
	fs.Var(f.tokenHeaders, "token-header", "header NAME=VALUE sent with token, refresh and revocation requests, e.g. Notion-Version=2025-09-03 (repeatable)")
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	profile, err := f.profile(fs)
	if err != nil {
		return err
	}
	bc, err := f.client(env)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := bc.do(ctx, http.MethodPost, "/providers", map[string]any{"profile": profile}, &raw); err != nil {
		return err
	}
	if f.json {
		return printJSON(ios.out, raw)
	}
	var p providerInfo
	_ = json.Unmarshal(raw, &p)
	fmt.Fprintf(ios.out, "provider %s added (id %s)\n", printable(p.Name), printable(p.ID))
	return nil
}

// profile builds the profile to send: the file's, or one from flags.
func (f *addFlags) profile(fs *flag.FlagSet) (map[string]any, error) {
	secret := f.clientSecret
	if f.clientSecretFile != "" {
		if secret != "" {
			return nil, errors.New("give --client-secret or --client-secret-file, not both")
		}
		b, err := os.ReadFile(f.clientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("reading --client-secret-file: %w", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	if f.file != "" {
		var others []string
		fs.Visit(func(fl *flag.Flag) {
			switch fl.Name {
			case "file", "client-secret", "client-secret-file", "broker", "api-key", "json":
			default:
				others = append(others, "--"+fl.Name)
			}
		})
		if len(others) > 0 {
			return nil, fmt.Errorf("--file cannot be combined with %s", strings.Join(others, ", "))
		}
		return profileFile(f.file, secret)
	}
	if (f.name == "" && f.template == "") || f.clientID == "" {
		return nil, errors.New("--client-id and --name or --template are required (or --file)")
	}
	if len(f.params) > 0 && f.template == "" {
		return nil, errors.New("--param needs --template")
	}
	p := map[string]any{"client_id": f.clientID}
	set := func(k, v string) {
		if v != "" {
			p[k] = v
		}
	}
	set("name", f.name)
	set("template", f.template)
	if len(f.params) > 0 {
		p["template_params"] = map[string]string(f.params)
	}
	set("resources_url", f.resourcesURL)
	set("display_name", f.displayName)
	set("issuer", f.issuer)
	set("auth_url", f.authURL)
	set("token_url", f.tokenURL)
	set("userinfo_url", f.userinfoURL)
	set("revocation_url", f.revocationURL)
	set("jwks_url", f.jwksURL)
	set("client_secret", secret)
	set("token_endpoint_auth_method", f.authMeth)
	if f.issuer != "" && !f.noDiscovery {
		p["enable_discovery"] = true
	}
	if len(f.aliases) > 0 {
		p["aliases"] = []string(f.aliases)
	}
	if len(f.scopes) > 0 {
		p["scopes"] = []string(f.scopes)
	}
	if len(f.allowedScopes) > 0 {
		p["allowed_scopes"] = []string(f.allowedScopes)
	}
	if len(f.quirks) > 0 {
		p["quirks"] = []string(f.quirks)
	}
	if len(f.authParams) > 0 {
		p["auth_params"] = map[string]string(f.authParams)
	}
	if len(f.tokenHeaders) > 0 {
		p["token_request_headers"] = map[string]string(f.tokenHeaders)
	}
	return p, nil
}

// profileFile reads a profile, bare or wrapped in {"profile": …}; secret,
// when given, is added (the file must not hold one too).
func profileFile(path, secret string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading --file: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil || doc == nil {
		return nil, fmt.Errorf("--file %s is not a JSON object", path)
	}
	if inner, ok := doc["profile"].(map[string]any); ok && len(doc) == 1 {
		doc = inner
	}
	if secret != "" {
		if _, has := doc["client_secret"]; has {
			return nil, errors.New("the profile file already has client_secret")
		}
		doc["client_secret"] = secret
	}
	return doc, nil
}
