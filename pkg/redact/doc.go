// Package redact removes secrets from what the collector stores, before a
// span leaves the span builder: values of sensitive URL parameters (query,
// fragment and `;` path parameters), the userinfo of URLs
// (`https://user:pass@host`), and credentials on process command lines.
// What it removes becomes the literal REDACTED; nothing is kept from which
// the value could be restored.
//
// A Redactor is built from a Mode (sensitive keys only, every value, or no
// parameter at all) and edits of the default key list. Its methods return
// their argument itself, without allocating, when there is nothing to
// remove: they run for every span.
package redact
