package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// MessageIDPrefix starts every message id.
const MessageIDPrefix = "msg_"

// signatureVersion tags an HMAC-SHA256 signature in webhook-signature.
const signatureVersion = "v1"

// ErrNoSecret: Sign was called without a secret.
var ErrNoSecret = errors.New("webhook: no secret to sign with")

// ErrBadMessageID: a message id is empty, too long, or holds a character
// other than ASCII letters, digits, '_' and '-'. Keeping ids to that set
// keeps them unambiguous in the signed content ("id.timestamp.body") and
// safe in a header.
var ErrBadMessageID = errors.New("webhook: malformed message id")

// maxMessageIDLen bounds a message id.
const maxMessageIDLen = 128

// NewMessageID returns "msg_" followed by 16 random bytes in unpadded
// base64url, drawn from random (crypto/rand.Reader in production). The id
// is assigned once per event and reused on every delivery attempt.
func NewMessageID(random io.Reader) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", fmt.Errorf("webhook: drawing a message id: %w", err)
	}
	return MessageIDPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func checkMessageID(id string) error {
	if id == "" || len(id) > maxMessageIDLen {
		return ErrBadMessageID
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
		if !ok {
			return ErrBadMessageID
		}
	}
	return nil
}

// Signature returns one "v1,<base64>" signature of the message: the
// HMAC-SHA256 under secret's key of id "." unix-seconds "." body.
func Signature(secret Secret, id string, ts time.Time, body []byte) string {
	mac := hmac.New(sha256.New, secret.key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return signatureVersion + "," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Sign returns the three headers of a message: its id, ts in unix seconds
// (ts is the attempt's time; sub-second precision is dropped), and one
// signature per secret, space-separated, in the order given. body must be
// sent byte for byte as signed.
func Sign(id string, ts time.Time, body []byte, secrets ...Secret) (http.Header, error) {
	if err := checkMessageID(id); err != nil {
		return nil, err
	}
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		if s.IsZero() {
			continue
		}
		sigs = append(sigs, Signature(s, id, ts, body))
	}
	if len(sigs) == 0 {
		return nil, ErrNoSecret
	}
	h := make(http.Header, 3)
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, strings.Join(sigs, " "))
	return h, nil
}
