// Package elfaddr maps a virtual address of an ELF file's code to the
// offset in the file of the byte the loader maps there: the offset a
// uprobe is attached at (collector/tlslib's OpenSSL functions,
// collector/nodejs's event-loop functions, collector/cpython's), and reads
// a function's code from the file (collector/gotls disassembles crypto/tls
// functions to find their returns). The file is untrusted: an
// address is mapped only through an executable loadable segment and only
// when the file holds the byte, whatever its program headers claim.
package elfaddr
