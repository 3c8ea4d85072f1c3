// Package pluginclient launches a backend plugin binary the way Grafana
// does — hashicorp go-plugin, handshake protocol version 2, magic cookie
// grafana_plugin_type=datasource, gRPC — and calls it over the pluginv2
// protocol. Tests and the demo use it to talk to the real plugin.
package pluginclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"

	"github.com/grafana/grafana-plugin-sdk-go/backend/grpcplugin"
	"github.com/grafana/grafana-plugin-sdk-go/data"
	"github.com/grafana/grafana-plugin-sdk-go/genproto/pluginv2"
)

// Client is one running plugin process.
type Client struct {
	c        *goplugin.Client
	data     pluginv2.DataClient
	diag     pluginv2.DiagnosticsClient
	resource pluginv2.ResourceClient
	pctx     *pluginv2.PluginContext
}

// Options describe the data source instance the calls target.
type Options struct {
	PluginID string
	UID      string
	Name     string
	JSONData any // the instance's jsonData, e.g. {"dataDirs": [...]}
	// SecureJSONData is the instance's decrypted secureJsonData (secrets,
	// e.g. bucketSecretAccessKey), as Grafana sends it.
	SecureJSONData map[string]string
	Stderr         io.Writer // plugin logs (default: discarded)
}

// Start launches the plugin binary at path.
func Start(path string, o Options) (*Client, error) {
	jd, err := json.Marshal(o.JSONData)
	if err != nil {
		return nil, fmt.Errorf("encoding jsonData: %w", err)
	}
	stderr := o.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	c := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  grpcplugin.ProtocolVersion,
			MagicCookieKey:   grpcplugin.MagicCookieKey,
			MagicCookieValue: grpcplugin.MagicCookieValue,
		},
		Plugins: goplugin.PluginSet{
			"data":        &grpcplugin.DataGRPCPlugin{},
			"diagnostics": &grpcplugin.DiagnosticsGRPCPlugin{},
			"resource":    &grpcplugin.ResourceGRPCPlugin{},
		},
		Cmd:              exec.Command(path),
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		Stderr:           stderr,
		StartTimeout:     30 * time.Second,
	})
	rpc, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("starting plugin %s: %w", path, err)
	}
	cl := &Client{c: c, pctx: &pluginv2.PluginContext{OrgId: 1, PluginId: o.PluginID,
		DataSourceInstanceSettings: &pluginv2.DataSourceInstanceSettings{Id: 1, Uid: o.UID, Name: o.Name,
			JsonData: jd, DecryptedSecureJsonData: o.SecureJSONData, LastUpdatedMS: time.Now().UnixMilli()}}}
	for name, dst := range map[string]any{"data": &cl.data, "diagnostics": &cl.diag, "resource": &cl.resource} {
		raw, err := rpc.Dispense(name)
		if err != nil {
			c.Kill()
			return nil, fmt.Errorf("dispensing %s: %w", name, err)
		}
		switch d := dst.(type) {
		case *pluginv2.DataClient:
			*d = raw.(pluginv2.DataClient)
		case *pluginv2.DiagnosticsClient:
			*d = raw.(pluginv2.DiagnosticsClient)
		case *pluginv2.ResourceClient:
			*d = raw.(pluginv2.ResourceClient)
		}
	}
	return cl, nil
}

// Close kills the plugin process.
func (c *Client) Close() { c.c.Kill() }

// CheckHealth calls the plugin's health check.
func (c *Client) CheckHealth(ctx context.Context) (*pluginv2.CheckHealthResponse, error) {
	return c.diag.CheckHealth(ctx, &pluginv2.CheckHealthRequest{PluginContext: c.pctx})
}

// Response is one query's answer, frames decoded.
type Response struct {
	Frames data.Frames
	Error  string
	Status int32
}

// Query sends one query (its JSON model) over [from, to] and decodes the
// frames.
func (c *Client) Query(ctx context.Context, query any, from, to time.Time) (*Response, error) {
	b, err := json.Marshal(query)
	if err != nil {
		return nil, err
	}
	resp, err := c.data.QueryData(ctx, &pluginv2.QueryDataRequest{PluginContext: c.pctx, Queries: []*pluginv2.DataQuery{{
		RefId: "A", Json: b, IntervalMS: 1000, MaxDataPoints: 1000,
		TimeRange: &pluginv2.TimeRange{FromEpochMS: from.UnixMilli(), ToEpochMS: to.UnixMilli()},
	}}})
	if err != nil {
		return nil, fmt.Errorf("QueryData: %w", err)
	}
	r, ok := resp.Responses["A"]
	if !ok {
		return nil, errors.New("QueryData: no response for refId A")
	}
	out := &Response{Error: r.Error, Status: r.Status}
	for _, fb := range r.Frames {
		f, err := data.UnmarshalArrowFrame(fb)
		if err != nil {
			return nil, fmt.Errorf("decoding frame: %w", err)
		}
		out.Frames = append(out.Frames, f)
	}
	return out, nil
}

// Resource calls GET path (e.g. "services?namespace=bookinfo") and returns
// the status and body.
func (c *Client) Resource(ctx context.Context, path string) (int, []byte, error) {
	p, _, _ := strings.Cut(path, "?")
	stream, err := c.resource.CallResource(ctx, &pluginv2.CallResourceRequest{PluginContext: c.pctx,
		Path: p, Method: "GET", Url: path})
	if err != nil {
		return 0, nil, err
	}
	var status int
	var body []byte
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, nil, err
		}
		if m.Code != 0 {
			status = int(m.Code)
		}
		body = append(body, m.Body...)
	}
	return status, body, nil
}
