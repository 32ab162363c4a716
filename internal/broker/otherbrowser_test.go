package broker_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A consent link opened in a second browser cannot work there; the page
// must say to ask the application for a new link, not to open it again.
func TestOtherBrowserPageSaysAskForANewLink(t *testing.T) {
	h, _ := setupFake(t, sqliteURL(t))
	c := h.consent("fake", nil, returnURL)
	h.visitStart(c.AuthURL) // the first browser binds the flow

	other := noFollowBrowser(t)
	for name, u := range map[string]string{
		"start":    c.AuthURL,
		"callback": h.srv.URL + "/auth/callback?" + url.Values{"state": {c.State}, "code": {"x"}}.Encode(),
	} {
		resp, err := other.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		page := string(body)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "ask the application for a new link") ||
			strings.Contains(page, "again in this browser") {
			t.Fatalf("%s in another browser: %d\n%s", name, resp.StatusCode, page)
		}
	}
}
