// Package outfile writes the files a command produces (a converted trace, a
// log, a plan image, a profile) so that an input is never destroyed and a
// reader never sees half a file: the output is refused when it is one of the
// command's inputs (the same file by device and inode, whatever the path
// says), and it is written to a temporary file in the same folder that is
// renamed into place only when Commit is called.
package outfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File is an output file being written. Write to it, then Commit (rename
// into place) or Abort (remove). Abort after Commit does nothing, so
// `defer f.Abort()` is safe.
type File struct {
	f    *os.File
	path string
	done bool
}

// ErrIsInput is what Create returns when the output is one of the inputs.
var ErrIsInput = errors.New("the output is one of the inputs")

// Create starts writing path. It fails when path names the same file as
// any of inputs (inputs that do not exist or are not files are ignored).
func Create(path string, inputs ...string) (*File, error) {
	if err := CheckNotInput(path, inputs...); err != nil {
		return nil, err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".partial-*")
	if err != nil {
		return nil, fmt.Errorf("output %s: %w", path, err)
	}
	return &File{f: f, path: path}, nil
}

// CheckNotInput fails when out names the same file as one of inputs.
func CheckNotInput(out string, inputs ...string) error {
	st, err := os.Stat(out)
	if err != nil {
		return nil // a new file cannot be an input
	}
	for _, in := range inputs {
		if in == "" {
			continue
		}
		ist, err := os.Stat(in)
		if err != nil {
			continue
		}
		if os.SameFile(st, ist) {
			return fmt.Errorf("output %s is the input %s: writing it would destroy the input (%w)", out, in, ErrIsInput)
		}
	}
	return nil
}

// Write implements io.Writer.
func (o *File) Write(p []byte) (int, error) { return o.f.Write(p) }

// Name is the final path.
func (o *File) Name() string { return o.path }

// Commit syncs the file and renames it into place.
func (o *File) Commit() error {
	if o.done {
		return nil
	}
	o.done = true
	tmp := o.f.Name()
	err := o.f.Sync()
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// CreateTemp makes files 0600; outputs are ordinary files.
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, o.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("output %s: %w", o.path, err)
	}
	return nil
}

// Abort removes the temporary file; the final path is left as it was.
func (o *File) Abort() {
	if o.done {
		return
	}
	o.done = true
	o.f.Close()
	os.Remove(o.f.Name())
}

// WriteFile writes data to path through a File (see Create).
func WriteFile(path string, data []byte, inputs ...string) error {
	f, err := Create(path, inputs...)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("output %s: %w", path, err)
	}
	return f.Commit()
}

// Writer is io.Writer with the final path's name, for messages.
var _ io.Writer = (*File)(nil)
