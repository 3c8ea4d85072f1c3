//go:build !unix

package store

import "os"

func diskUsage(info os.FileInfo) int64 { return info.Size() }
