// Package browser holds Dromos's real-browser end-to-end tests: headless
// Chromium, driven over the DevTools protocol (chromedp), goes through the
// whole consent flow against real broker, gateway and `dromos dev`
// processes and an independently written OpenID Provider, all on loopback.
// The tests prove what the HTTP-client tests cannot: that the flow cookie,
// the redirects and the login and consent forms work in a browser, and
// that a consent started in one browser cannot be finished in another.
//
// The package's only non-test code starts and cleans up those browsers.
// The tests skip when Chromium is missing, except under CI=true, where
// they fail.
package browser
