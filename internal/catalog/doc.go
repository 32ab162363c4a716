// Package catalog owns the embedded provider catalog: one template per
// widely used OAuth provider (endpoints, default scopes, quirks, where the
// facts came from), the validation of the catalog itself, and Expand, which
// turns a profile naming a template into a complete provider.Profile with
// its placeholders ({tenant}, {domain}, {shop}…) filled in safely. It also
// renders the generated catalog section of docs/PROVIDERS.md. It does no
// I/O beyond reading its embedded file.
package catalog
