// Package packaging builds the installable plugin archive and checks it the
// way grafana-cli and Grafana's plugin loader do.
//
// Build compiles the backend (./pkg) for each platform into dist/ with the
// plugin SDK's executable naming (gpx_zerotrace_<os>_<arch>[.exe]); Zip puts
// dist/ under one top-level folder named after the plugin id; Check opens a
// zip and verifies what an install needs: one top folder equal to the id, a
// valid plugin.json whose executable matches executable binaries, a filled-in
// version, module.js, and dashboards that parse and use only this data source
// and panel types Grafana ships.
package packaging
