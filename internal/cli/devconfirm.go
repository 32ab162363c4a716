package cli

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dromos-dev/dromos/internal/confirm"
)

// devConfirm is dromos dev's stand-in for an application's half of user
// confirmation: the demo return page, also usable as confirm_url, offers
// a button that confirms the user the flow was started for and sends the
// browser on. It exists only in dev, where the point is to try the flow;
// it defeats what confirmation protects against, since it never asks who
// is signed in.
type devConfirm struct {
	// broker is the dev broker's open API over loopback, as the dev
	// gateway calls it.
	broker *brokerClient
	log    *slog.Logger
}

func newDevConfirm(brokerURL string, log *slog.Logger) devConfirm {
	return devConfirm{broker: &brokerClient{base: strings.TrimSuffix(brokerURL, "/"), hc: &http.Client{Timeout: 10 * time.Second}}, log: log}
}

// returnPage is GET /dev/return: the outcome a real agent would read from
// the query, or, when the browser arrives as at a confirm_url (a
// confirmation and no status), the one-click confirmation.
func (d devConfirm) returnPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := devPage{Status: "error", Error: "unknown"}
	if id := q.Get("connection_id"); uuidRE.MatchString(id) {
		p.ID = id
	}
	if v := q.Get("confirmation"); v != "" && !q.Has("status") {
		if id, ok := confirm.ConnectionID(v); ok && p.ID != "" && id == p.ID {
			p.Status, p.Confirmation = "confirm", v
			// The user is shown when the broker says; the button works
			// without it.
			if c, err := d.connection(r.Context(), id); err == nil {
				p.User = c.UserID
			}
			writeDevPage(w, http.StatusOK, p)
			return
		}
		p.Error = "invalid_confirmation"
	}
	if q.Get("status") == "success" {
		p.Status = "success"
	}
	if e := q.Get("error"); e != "" && len(e) <= 64 {
		p.Error = e
	}
	writeDevPage(w, http.StatusOK, p)
}

// sameOrigin reports whether a browser's post comes from a page of this
// origin: the form is the return page's own (the value is a secret anyway;
// this keeps the endpoint the page's). Browsers say so in Sec-Fetch-Site;
// the page's no-referrer policy makes their Origin "null", so Origin is
// only checked when it names one. A client that sends neither (curl) is
// let through.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		return err == nil && u.Host == r.Host
	}
	return true
}

// maxConfirmForm bounds the button's form: one value of about 80 bytes.
const maxConfirmForm = 4 << 10

// confirmPost is POST /dev/confirm: it presents the value with the user
// the connection was requested for and redirects the browser to the
// broker's continue_url, where the broker checks it is the browser that
// consented.
func (d devConfirm) confirmPost(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeDevPage(w, http.StatusForbidden, devPage{Status: "error", Error: "cross_origin"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxConfirmForm)
	if err := r.ParseForm(); err != nil {
		writeDevPage(w, http.StatusBadRequest, devPage{Status: "error", Error: "bad_request"})
		return
	}
	v := r.PostForm.Get("confirmation")
	id, ok := confirm.ConnectionID(v)
	if !ok {
		writeDevPage(w, http.StatusBadRequest, devPage{Status: "error", Error: "invalid_confirmation"})
		return
	}
	c, err := d.connection(r.Context(), id)
	if err != nil {
		d.fail(w, r, id, err)
		return
	}
	var out struct {
		ContinueURL string `json:"continue_url"`
	}
	if err := d.broker.do(r.Context(), http.MethodPost, "/connections/confirm",
		map[string]string{"confirmation": v, "user_id": c.UserID, "client_name": c.ClientName}, &out); err != nil {
		d.fail(w, r, id, err)
		return
	}
	if !strings.HasPrefix(out.ContinueURL, d.broker.base+"/auth/confirm?") {
		d.fail(w, r, id, errors.New("the broker answered without a continue_url of its own"))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, out.ContinueURL, http.StatusSeeOther)
}

func (d devConfirm) fail(w http.ResponseWriter, r *http.Request, id string, err error) {
	p := devPage{Status: "error", ID: id, Error: "broker_error"}
	status := http.StatusBadGateway
	var be *brokerError
	if errors.As(err, &be) && be.Code != "" && len(be.Code) <= 64 {
		p.Error, status = be.Code, be.Status
	}
	// err names no value: the broker's code and status only.
	d.log.WarnContext(r.Context(), "dev confirmation failed", "connection_id", id, "err", err)
	writeDevPage(w, status, p)
}

type devConnection struct {
	UserID     string `json:"user_id"`
	ClientName string `json:"client_name"`
}

func (d devConfirm) connection(ctx context.Context, id string) (devConnection, error) {
	var c devConnection
	err := d.broker.do(ctx, http.MethodGet, "/connections/"+url.PathEscape(id), nil, &c)
	return c, err
}
