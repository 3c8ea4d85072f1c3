// Package elfaddr maps a virtual address of an ELF file's code to the
// offset in the file of the byte the loader maps there: the offset a
// uprobe is attached at (collector/tlslib's OpenSSL functions,
// collector/nodejs's event-loop functions). The file is untrusted: an
// address is mapped only through an executable loadable segment and only
// when the file holds the byte, whatever its program headers claim.
package elfaddr
