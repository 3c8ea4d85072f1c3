// Package hpackdec decodes HPACK header blocks (RFC 7541) for a reader
// that may not have seen every block of a connection: one joined mid-way,
// or one that lost a block in bytes not captured after starting its table
// anew. Where golang.org/x/net/http2/hpack stops a block at a reference to
// an entry it does not hold, this decoder goes on: the field is left out,
// and an entry the block adds under a name it does not know is kept as a
// placeholder, so that the table's indexes stay in step with the sender's
// for every entry added since the table started. A field is given only when
// its name and value are both known; nothing is ever named by another
// entry.
package hpackdec
