package profiles

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
)

// ---------------------------------------------------------------------------
// Loading.

// Profiles returns the names of the embedded profiles, sorted.
func Names() []string {
	entries, err := fs.ReadDir(profileFS, ".")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok && !e.IsDir() {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Load loads an embedded profile by name (see Profiles), or else the
// YAML file at the path nameOrPath. An embedded name wins over a file of the
// same name in the working directory: write "./name" for the file.
func Load(nameOrPath string) (*Profile, error) {
	if !strings.ContainsAny(nameOrPath, `/\`) && nameOrPath != "" {
		data, err := profileFS.ReadFile(nameOrPath + ".yaml")
		if err == nil {
			p, err := parse(data, "boards/profiles/"+nameOrPath+".yaml")
			if err != nil {
				return nil, err
			}
			if p.Name != nameOrPath {
				return nil, fmt.Errorf("boards/profiles/%s.yaml: name: %q differs from the file name", nameOrPath, p.Name)
			}
			p.Source = "embedded:" + nameOrPath
			return p, nil
		}
	}
	data, err := readLimited(nameOrPath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !strings.ContainsAny(nameOrPath, `/\`) && !strings.HasSuffix(nameOrPath, ".yaml") && !strings.HasSuffix(nameOrPath, ".yml") {
			return nil, fmt.Errorf("profile %q: neither an embedded profile (%s) nor a file", oneLine(nameOrPath), strings.Join(Names(), ", "))
		}
		return nil, fmt.Errorf("profile: %s", oneLine(err.Error()))
	}
	return Parse(data, nameOrPath)
}

// readLimited reads a file of at most MaxBytes (+1 to detect more).
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxBytes+1))
}
