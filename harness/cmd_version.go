package main

import (
	"runtime"
	"runtime/debug"

	"github.com/batteryless/harness/reports"
	"github.com/spf13/cobra"
)

// version is set at release builds with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type versionInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified,omitempty"`
}

func buildVersion() versionInfo {
	vi := versionInfo{Version: version, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vi.Revision = s.Value
			case "vcs.modified":
				vi.Modified = s.Value == "true"
			}
		}
	}
	return vi
}

func newVersionCmd(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the harness version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			vi := buildVersion()
			if s.json() {
				return reports.JSON(cmd.OutOrStdout(), vi)
			}
			rev := vi.Revision
			if rev == "" {
				rev = "unknown"
			}
			return reports.Table(cmd.OutOrStdout(), []string{"harness", "go", "revision"}, [][]string{{vi.Version, vi.Go, rev}}, nil)
		},
	}
}
