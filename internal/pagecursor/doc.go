// Package pagecursor turns a connection's place in the listing order into
// the opaque cursor handed to API callers, and back. A cursor only says
// where a page starts: every ownership and filter check is applied again
// to the page it asks for, so a forged cursor reveals nothing.
package pagecursor
