package sdk_test

import (
	"errors"
	"io"
	"log"
	"net/http"
	"os"

	"github.com/dromos-dev/dromos/sdk"
)

func ExampleVerifyWebhook() {
	secret := os.Getenv("DROMOS_WEBHOOK_SECRET") // the whsec_… shown when the endpoint was made
	http.HandleFunc("/dromos-events", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		ev, err := sdk.VerifyWebhook(secret, r.Header, body, 0)
		if errors.Is(err, sdk.ErrWebhookTimestamp) || errors.Is(err, sdk.ErrWebhookSignature) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		} else if err != nil {
			http.Error(w, "bad webhook", http.StatusBadRequest)
			return
		}
		// ev.ID is the same on every retry of one event: drop repeats.
		switch ev.Type {
		case sdk.WebhookConnectionReauthRequired:
			log.Printf("connection %s of user %s needs consent again (%s)", ev.Data.ConnectionID, ev.Data.UserID, ev.Data.Reason)
		case sdk.WebhookConnectionActive:
			log.Printf("connection %s is active", ev.Data.ConnectionID)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
