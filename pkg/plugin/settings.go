package plugin

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
)

// DefaultDataDir is where the collector writes and the provisioning points.
const DefaultDataDir = "/var/lib/zerotrace"

// Settings are the data source's jsonData.
type Settings struct {
	DataDirs []string `json:"dataDirs"`
}

// LoadSettings decodes jsonData; no directory means DefaultDataDir.
func LoadSettings(s backend.DataSourceInstanceSettings) (Settings, error) {
	var st Settings
	if len(s.JSONData) > 0 {
		if err := json.Unmarshal(s.JSONData, &st); err != nil {
			return st, fmt.Errorf("reading settings: %w", err)
		}
	}
	var dirs []string
	for _, d := range st.DataDirs {
		if d = strings.TrimSpace(d); d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		dirs = []string{DefaultDataDir}
	}
	st.DataDirs = dirs
	return st, nil
}
