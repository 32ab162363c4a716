package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/config"
)

func runWebhooks(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	return runGroup(ctx, "webhooks", "Manages lifecycle webhook endpoints at the broker: global ones (every\n"+
		"connection's events) by default, or one agent's with --client.", []subcommand{
		{"add", "register an endpoint URL; prints its secret once", runWebhooksAdd},
		{"list", "list endpoints", runWebhooksList},
		{"remove", "remove an endpoint and its queued deliveries", runWebhooksRemove},
		{"rotate", "give an endpoint a new secret; prints it once", runWebhooksRotate},
		{"enable", "re-enable a disabled endpoint and replay its backlog", runWebhooksEnable},
		{"deliveries", "show an endpoint's recent deliveries", runWebhooksDeliveries},
		{"retry", "make one delivery due again now", runWebhooksRetry},
	}, args, ios, env)
}

// webhookInfo is what the tables show of an endpoint.
type webhookInfo struct {
	ID             string     `json:"id"`
	ClientName     string     `json:"client_name"`
	URL            string     `json:"url"`
	Events         []string   `json:"events"`
	Enabled        bool       `json:"enabled"`
	DisabledReason string     `json:"disabled_reason"`
	FailingSince   *time.Time `json:"failing_since"`
	Secret         string     `json:"secret"`
	CreatedAt      time.Time  `json:"created_at"`
}

// webhookFlags adds --client to the operator flags.
type webhookFlags struct {
	opsFlags
	owner string
}

func (w *webhookFlags) register(fs *flag.FlagSet) {
	w.opsFlags.register(fs)
	fs.StringVar(&w.owner, "client", "", "act on this agent's (gateway client's) endpoints instead of the global ones")
}

// path is the broker path of a webhook route with the owner in the query.
func (w *webhookFlags) path(segs ...string) string {
	p := "/webhooks"
	for _, s := range segs {
		p += "/" + url.PathEscape(s)
	}
	if w.owner != "" {
		p += "?client_name=" + url.QueryEscape(w.owner)
	}
	return p
}

func runWebhooksAdd(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var w webhookFlags
	var events string
	fs := newFlags("webhooks add URL", "Registers a webhook endpoint and prints its secret (whsec_…), which is not shown again.", brokerEnvHelp, ios)
	w.register(fs)
	fs.StringVar(&events, "events", "", "comma-separated event types (default: every type)")
	pos, err := parseArgs(fs, args, 1, "one endpoint URL")
	if err != nil {
		return err
	}
	bc, err := w.client(env)
	if err != nil {
		return err
	}
	body := map[string]any{"url": pos[0]}
	if events != "" {
		body["events"] = strings.Split(events, ",")
	}
	var out webhookInfo
	if err := bc.do(ctx, http.MethodPost, w.path(), body, &out); err != nil {
		return err
	}
	return printWebhook(ios, w.json, out)
}

func printWebhook(ios ioSet, asJSON bool, e webhookInfo) error {
	if asJSON {
		return printJSON(ios.out, e)
	}
	owner := e.ClientName
	if owner == "" {
		owner = "(global)"
	}
	kv := [][2]string{{"ID", e.ID}, {"CLIENT", owner}, {"URL", e.URL}, {"EVENTS", orDash(strings.Join(e.Events, " "))},
		{"ENABLED", yesNo(e.Enabled)}, {"DISABLED", e.DisabledReason}, {"CREATED", stamp(e.CreatedAt)}}
	if e.Secret != "" {
		kv = append(kv, [2]string{"SECRET", e.Secret + "   (shown once: store it now)"})
	}
	return fields(ios.out, kv)
}

func runWebhooksList(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var w webhookFlags
	fs := newFlags("webhooks list", "Lists webhook endpoints: every endpoint, or one agent's with --client. Secrets are never shown.", brokerEnvHelp, ios)
	w.register(fs)
	if _, err := parseArgs(fs, args, 0, ""); err != nil {
		return err
	}
	bc, err := w.client(env)
	if err != nil {
		return err
	}
	var out struct {
		Webhooks []webhookInfo `json:"webhooks"`
	}
	if err := bc.do(ctx, http.MethodGet, w.path(), nil, &out); err != nil {
		return err
	}
	if w.json {
		if out.Webhooks == nil {
			out.Webhooks = []webhookInfo{}
		}
		return printJSON(ios.out, out.Webhooks)
	}
	rows := [][]string{{"ID", "CLIENT", "URL", "EVENTS", "ENABLED"}}
	for _, e := range out.Webhooks {
		owner := e.ClientName
		if owner == "" {
			owner = "(global)"
		}
		enabled := yesNo(e.Enabled)
		if !e.Enabled && e.DisabledReason != "" {
			enabled = "no (" + e.DisabledReason + ")"
		}
		rows = append(rows, []string{e.ID, owner, e.URL, orDash(strings.Join(e.Events, " ")), enabled})
	}
	return table(ios.out, rows)
}

func runWebhooksRemove(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var w webhookFlags
	fs := newFlags("webhooks remove ID", "Removes a webhook endpoint and its queued deliveries.", brokerEnvHelp, ios)
	w.register(fs)
	pos, err := parseArgs(fs, args, 1, "one endpoint ID")
	if err != nil {
		return err
	}
	bc, err := w.client(env)
	if err != nil {
		return err
	}
	if err := bc.do(ctx, http.MethodDelete, w.path(pos[0]), nil, nil); err != nil {
		return err
	}
	if w.json {
		return printJSON(ios.out, map[string]string{"removed": pos[0]})
	}
	fmt.Fprintf(ios.out, "webhook endpoint %s removed\n", printable(pos[0]))
	return nil
}

func runWebhooksRotate(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	return webhookPost(ctx, args, ios, env, "webhooks rotate ID",
		"Gives an endpoint a new secret and prints it; the old one keeps signing for 24 hours.", "rotate-secret")
}

func runWebhooksEnable(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	return webhookPost(ctx, args, ios, env, "webhooks enable ID",
		"Re-enables an endpoint disabled for failing; its queued events are sent again, in order.", "enable")
}

func webhookPost(ctx context.Context, args []string, ios ioSet, env config.Env, usage, help, verb string) error {
	var w webhookFlags
	fs := newFlags(usage, help, brokerEnvHelp, ios)
	w.register(fs)
	pos, err := parseArgs(fs, args, 1, "one endpoint ID")
	if err != nil {
		return err
	}
	bc, err := w.client(env)
	if err != nil {
		return err
	}
	var out webhookInfo
	if err := bc.do(ctx, http.MethodPost, w.path(pos[0], verb), nil, &out); err != nil {
		return err
	}
	return printWebhook(ios, w.json, out)
}

type deliveryInfo struct {
	ID             string     `json:"id"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	ConnectionID   string     `json:"connection_id"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	ResponseStatus int        `json:"response_status"`
	LatencyMS      int64      `json:"latency_ms"`
	Error          string     `json:"error"`
	NextAttemptAt  *time.Time `json:"next_attempt_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

func runWebhooksDeliveries(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var w webhookFlags
	fs := newFlags("webhooks deliveries ID", "Shows an endpoint's recent deliveries, newest first, with their last attempt.", brokerEnvHelp, ios)
	w.register(fs)
	pos, err := parseArgs(fs, args, 1, "one endpoint ID")
	if err != nil {
		return err
	}
	bc, err := w.client(env)
	if err != nil {
		return err
	}
	var out struct {
		Deliveries []json.RawMessage `json:"deliveries"`
	}
	if err := bc.do(ctx, http.MethodGet, w.path(pos[0], "deliveries"), nil, &out); err != nil {
		return err
	}
	if w.json {
		if out.Deliveries == nil {
			out.Deliveries = []json.RawMessage{}
		}
		return printJSON(ios.out, out.Deliveries)
	}
	rows := [][]string{{"ID", "EVENT", "CONNECTION", "STATUS", "ATTEMPTS", "LAST ANSWER", "NEXT ATTEMPT", "CREATED"}}
	for _, raw := range out.Deliveries {
		var d deliveryInfo
		if err := json.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("the broker's deliveries are not the JSON expected: %w", err)
		}
		answer := d.Error
		if d.ResponseStatus != 0 {
			answer = strings.TrimSpace(strconv.Itoa(d.ResponseStatus) + " " + d.Error)
		}
		next := ""
		if d.NextAttemptAt != nil {
			next = stamp(*d.NextAttemptAt)
		}
		rows = append(rows, []string{d.ID, d.EventType, d.ConnectionID, d.Status, strconv.Itoa(d.Attempts), orDash(answer),
			orDash(next), stamp(d.CreatedAt)})
	}
	return table(ios.out, rows)
}

func runWebhooksRetry(ctx context.Context, args []string, ios ioSet, env config.Env) error {
	var w webhookFlags
	fs := newFlags("webhooks retry ID DELIVERY_ID", "Makes one delivery pending and due now, whatever its state.", brokerEnvHelp, ios)
	w.register(fs)
	pos, err := parseArgs(fs, args, 2, "an endpoint ID and a delivery ID")
	if err != nil {
		return err
	}
	bc, err := w.client(env)
	if err != nil {
		return err
	}
	var out json.RawMessage
	if err := bc.do(ctx, http.MethodPost, w.path(pos[0], "deliveries", pos[1], "retry"), nil, &out); err != nil {
		return err
	}
	if w.json {
		return printJSON(ios.out, out)
	}
	fmt.Fprintf(ios.out, "delivery %s is due again\n", printable(pos[1]))
	return nil
}
