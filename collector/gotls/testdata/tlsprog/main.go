// Command tlsprog links crypto/tls; gotls's tests read its binary.
package main

import (
	"crypto/tls"
	"fmt"
	"os"
)

func main() {
	c, err := tls.Dial("tcp", "127.0.0.1:1", &tls.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	c.Write([]byte("x"))
	c.Read(make([]byte, 1))
}
