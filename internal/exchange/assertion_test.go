package exchange_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dromos-dev/dromos/internal/exchange"
	"github.com/dromos-dev/dromos/internal/secret"
)

func TestClientCredentialsPrivateKeyJWT(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var claims jwt.Claims
	var form map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		form = map[string]string{}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		tok, err := jwt.ParseSigned(r.PostForm.Get("client_assertion"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil || tok.Claims(&key.PublicKey, &claims) != nil {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"cc","token_type":"Bearer","expires_in":300}`))
	}))
	defer srv.Close()
	c := exchange.New(exchange.Options{Now: func() time.Time { return now }})
	ep := exchange.Endpoint{TokenURL: srv.URL + "/token", ClientID: "machine-1", ClientSecret: secret.String(pemKey),
		AuthMethod: exchange.AuthPrivateKeyJWT, Audience: srv.URL, Resource: "https://mcp.example/mcp"}
	tok, err := c.ClientCredentials(context.Background(), ep, []string{"a", "b"})
	if err != nil || tok.AccessToken != "cc" {
		t.Fatalf("ClientCredentials = %+v, %v", tok, err)
	}
	if form["grant_type"] != "client_credentials" || form["scope"] != "a b" || form["resource"] != ep.Resource ||
		form["client_assertion_type"] != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || form["client_secret"] != "" {
		t.Fatalf("form %v", form)
	}
	if claims.Issuer != "machine-1" || claims.Subject != "machine-1" || len(claims.Audience) != 1 || claims.Audience[0] != srv.URL ||
		claims.ID == "" || !claims.Expiry.Time().After(now) || claims.Expiry.Time().After(now.Add(2*time.Minute)) {
		t.Fatalf("assertion claims %+v", claims)
	}
	ep.ClientSecret = "not a key"
	if _, err := c.ClientCredentials(context.Background(), ep, nil); err == nil {
		t.Fatal("a bad private key signed an assertion")
	}
}
