package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/config"
	"github.com/dromos-dev/dromos/internal/connmeta"
)

func runConnections(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	return runGroup(ctx, "connections", "Inspects and deletes connections at the broker.", []subcommand{
		{"list", "list connections (oldest first) with filters", runConnectionsList},
		{"show", "show one connection", runConnectionsShow},
		{"delete", "delete a connection and its tokens", runConnectionsDelete},
	}, args, ios, env)
}

// connectionInfo is what the tables show of a broker connection.
type connectionInfo struct {
	ID            string                     `json:"connection_id"`
	Status        string                     `json:"status"`
	StatusReason  string                     `json:"status_reason"`
	WorkspaceID   string                     `json:"workspace_id"`
	UserID        string                     `json:"user_id"`
	ClientName    string                     `json:"client_name"`
	ProviderID    string                     `json:"provider_id"`
	Provider      string                     `json:"provider"`
	Scopes        []string                   `json:"scopes"`
	Metadata      map[string]json.RawMessage `json:"metadata"`
	ProviderData  map[string]string          `json:"provider_data"`
	Subject       string                     `json:"subject"`
	Email         string                     `json:"email"`
	CreatedAt     time.Time                  `json:"created_at"`
	UpdatedAt     time.Time                  `json:"updated_at"`
	ExpiresAt     time.Time                  `json:"expires_at"`
	LastRefreshAt time.Time                  `json:"last_refresh_at"`
	NextRefreshAt time.Time                  `json:"next_refresh_at"`
}

func (c connectionInfo) status() string {
	if c.StatusReason != "" {
		return c.Status + " (" + c.StatusReason + ")"
	}
	return c.Status
}

func runConnectionsList(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var o opsFlags
	var user, workspace, client, prov, status string
	limit := 100
	fs := newFlags("connections list", "Lists connections at the broker.", brokerEnvHelp, ios)
	o.register(fs)
	fs.StringVar(&user, "user", "", "only this user id")
	fs.StringVar(&workspace, "workspace", "", "only this workspace")
	fs.StringVar(&client, "client", "", "only this gateway client name")
	fs.StringVar(&prov, "provider", "", "only this provider (name or alias)")
	fs.StringVar(&status, "status", "", "only this status: pending, exchanging, active, failed, expired, revoked")
	fs.IntVar(&limit, "limit", limit, "at most this many (1-1000)")
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	if limit < 1 || limit > 1000 {
		return fmt.Errorf("--limit must be from 1 to 1000")
	}
	bc, err := o.client(env)
	if err != nil {
		return err
	}
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	for k, v := range map[string]string{"user_id": user, "workspace_id": workspace, "client_name": client, "status": status} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if prov != "" {
		_, p, err := providerByName(ctx, bc, prov)
		if err != nil {
			return err
		}
		q.Set("provider_id", p.ID)
	}
	var out struct {
		Connections []json.RawMessage `json:"connections"`
	}
	if err := bc.do(ctx, http.MethodGet, "/connections?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	if o.json {
		if out.Connections == nil {
			out.Connections = []json.RawMessage{}
		}
		return printJSON(ios.out, out.Connections)
	}
	rows := [][]string{{"ID", "STATUS", "PROVIDER", "USER", "CLIENT", "UPDATED"}}
	for _, raw := range out.Connections {
		var c connectionInfo
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("the broker's connection list is not the JSON expected: %w", err)
		}
		rows = append(rows, []string{c.ID, c.status(), orDash(c.Provider), orDash(c.UserID), orDash(c.ClientName), stamp(c.UpdatedAt)})
	}
	return table(ios.out, rows)
}

func connPathFor(id string) string { return "/connections/" + url.PathEscape(id) }

func runConnectionsShow(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var o opsFlags
	fs := newFlags("connections show ID", "Shows one connection.", brokerEnvHelp, ios)
	o.register(fs)
	pos, err := parseArgs(fs, args, 1, "one connection ID")
	if err != nil {
		return err
	}
	bc, err := o.client(env)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := bc.do(ctx, http.MethodGet, connPathFor(pos[0]), nil, &raw); err != nil {
		return err
	}
	if o.json {
		return printJSON(ios.out, raw)
	}
	var c connectionInfo
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("the broker's connection answer is not the JSON expected: %w", err)
	}
	return fields(ios.out, [][2]string{
		{"ID", c.ID}, {"STATUS", c.Status}, {"REASON", c.StatusReason}, {"PROVIDER", c.Provider}, {"PROVIDER ID", c.ProviderID},
		{"WORKSPACE", c.WorkspaceID}, {"USER", c.UserID}, {"CLIENT", c.ClientName}, {"SCOPES", strings.Join(c.Scopes, " ")},
		{"SUBJECT", c.Subject}, {"EMAIL", c.Email}, {"METADATA", pairs(metadataText(c.Metadata))},
		{"PROVIDER DATA", pairs(c.ProviderData)},
		{"CREATED", stamp(c.CreatedAt)}, {"UPDATED", stamp(c.UpdatedAt)}, {"EXPIRES", stamp(c.ExpiresAt)},
		{"LAST REFRESH", stamp(c.LastRefreshAt)}, {"NEXT REFRESH", stamp(c.NextRefreshAt)},
	})
}

// pairs shows a map as sorted k=v pairs.
// metadataText shows a string value as the string itself and any other
// JSON value as its JSON text.
func metadataText(m map[string]json.RawMessage) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := connmeta.AsString(v); ok {
			out[k] = s
		} else {
			out[k] = string(v)
		}
	}
	return out
}

func pairs(m map[string]string) string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

func runConnectionsDelete(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var o opsFlags
	fs := newFlags("connections delete ID", "Deletes a connection and its stored tokens. The agent must connect again.", brokerEnvHelp, ios)
	o.register(fs)
	pos, err := parseArgs(fs, args, 1, "one connection ID")
	if err != nil {
		return err
	}
	bc, err := o.client(env)
	if err != nil {
		return err
	}
	if err := bc.do(ctx, http.MethodDelete, connPathFor(pos[0]), nil, nil); err != nil {
		return err
	}
	if o.json {
		return printJSON(ios.out, map[string]string{"deleted": pos[0]})
	}
	fmt.Fprintf(ios.out, "connection %s deleted\n", printable(pos[0]))
	return nil
}

// tokenSummary is what `token` and `connect` print about a token: the
// secrets cut to a recognisable prefix unless revealed.
type tokenSummary struct {
	AccessToken string     `json:"access_token"`
	TokenType   string     `json:"token_type"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	ExpiresIn   *int64     `json:"expires_in,omitempty"`
	Scope       string     `json:"scope"`
	IDToken     string     `json:"id_token,omitempty"`
	Provider    string     `json:"provider"`
	Redacted    bool       `json:"redacted"`
}

func newTokenSummary(access, typ, scope, idToken, provider string, expiresAt time.Time, now time.Time, reveal bool) tokenSummary {
	s := tokenSummary{AccessToken: access, TokenType: typ, Scope: scope, IDToken: idToken, Provider: provider, Redacted: !reveal}
	if !reveal {
		s.AccessToken, s.IDToken = redact(access), redact(idToken)
	}
	if !expiresAt.IsZero() {
		at := expiresAt.UTC()
		in := max(int64(at.Sub(now).Seconds()), 0)
		s.ExpiresAt, s.ExpiresIn = &at, &in
	}
	return s
}

// write prints the summary; lead rows (such as the connection id) come
// first, aligned with it.
func (s tokenSummary) write(w io.Writer, asJSON bool, lead ...[2]string) error {
	if asJSON {
		return printJSON(w, s)
	}
	exp := "never (no expiry given)"
	if s.ExpiresAt != nil {
		exp = fmt.Sprintf("%s (in %s)", stamp(*s.ExpiresAt), time.Duration(*s.ExpiresIn)*time.Second)
	}
	idTok := s.IDToken
	if idTok == "" {
		idTok = "none"
	}
	return fields(w, append(lead, [][2]string{
		{"ACCESS TOKEN", s.AccessToken}, {"TYPE", s.TokenType}, {"EXPIRES", exp}, {"SCOPE", orDash(s.Scope)},
		{"ID TOKEN", idTok}, {"PROVIDER", s.Provider},
	}...))
}

func runToken(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var o opsFlags
	var reveal bool
	fs := newFlags("token ID", "Fetches a connection's current access token from the broker (refreshed if due) and prints a\n"+
		"summary with the token cut to its first characters. --reveal prints it whole: treat the output as a secret.", brokerEnvHelp, ios)
	o.register(fs)
	fs.BoolVar(&reveal, "reveal", false, "print the whole access and id tokens")
	pos, err := parseArgs(fs, args, 1, "one connection ID")
	if err != nil {
		return err
	}
	bc, err := o.client(env)
	if err != nil {
		return err
	}
	var t struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresAt   string `json:"expires_at"`
		Scope       string `json:"scope"`
		IDToken     string `json:"id_token"`
		Provider    string `json:"provider"`
	}
	if err := bc.do(ctx, http.MethodGet, connPathFor(pos[0])+"/token?id_token=true", nil, &t); err != nil {
		return err
	}
	var exp time.Time
	if t.ExpiresAt != "" {
		if exp, err = time.Parse(time.RFC3339, t.ExpiresAt); err != nil {
			return fmt.Errorf("the broker's expires_at is not an RFC 3339 time")
		}
	}
	return newTokenSummary(t.AccessToken, t.TokenType, t.Scope, t.IDToken, t.Provider, exp, time.Now(), reveal).write(ios.out, o.json)
}
