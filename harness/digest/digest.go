// Package digest names contents by their SHA-256, in hex: the hashes a
// log's header, a nightly cell's ID and a result record carry.
package digest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// Bytes is the SHA-256 of b.
func Bytes(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// File is the SHA-256 of the file at path, read in a stream.
func File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("digest: %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
