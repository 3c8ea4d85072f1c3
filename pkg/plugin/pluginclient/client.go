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
	// Cmd, if set, runs the plugin (its Path is the binary): another user,
	// environment or directory. Default: exec.Command(path).
	Cmd *exec.Cmd
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
	cmd := o.Cmd
	if cmd == nil {
		cmd = exec.Command(path)
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
		Cmd:              cmd,
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
	rs, err := c.QueryData(ctx, []DataQuery{{RefID: "A", JSON: query, From: from, To: to}})
	if err != nil {
		return nil, err
	}
	return rs["A"], nil
}

// DataQuery is one query of a request.
type DataQuery struct {
	RefID    string
	JSON     any // the query model
	From, To time.Time
	Interval time.Duration // default 1 s
}

// QueryData sends the queries in one request, as a dashboard panel does,
// and returns each answer by refId (an error if one is missing).
func (c *Client) QueryData(ctx context.Context, qs []DataQuery) (map[string]*Response, error) {
	return c.QueryDataWithHeaders(ctx, nil, qs)
}

// QueryDataWithHeaders sends the queries with request headers, as Grafana's
// alerting does ({"FromAlert": "true"}).
func (c *Client) QueryDataWithHeaders(ctx context.Context, headers map[string]string, qs []DataQuery) (map[string]*Response, error) {
	req := &pluginv2.QueryDataRequest{PluginContext: c.pctx, Headers: headers}
	for _, q := range qs {
		b, err := json.Marshal(q.JSON)
		if err != nil {
			return nil, err
		}
		iv := q.Interval
		if iv == 0 {
			iv = time.Second
		}
		req.Queries = append(req.Queries, &pluginv2.DataQuery{RefId: q.RefID, Json: b, IntervalMS: iv.Milliseconds(),
			MaxDataPoints: 1000, TimeRange: &pluginv2.TimeRange{FromEpochMS: q.From.UnixMilli(), ToEpochMS: q.To.UnixMilli()}})
	}
	resp, err := c.data.QueryData(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("QueryData: %w", err)
	}
	out := map[string]*Response{}
	for _, q := range qs {
		r, ok := resp.Responses[q.RefID]
		if !ok {
			return nil, fmt.Errorf("QueryData: no response for refId %s", q.RefID)
		}
		dr := &Response{Error: r.Error, Status: r.Status}
		for _, fb := range r.Frames {
			f, err := data.UnmarshalArrowFrame(fb)
			if err != nil {
				return nil, fmt.Errorf("decoding frame: %w", err)
			}
			dr.Frames = append(dr.Frames, f)
		}
		out[q.RefID] = dr
	}
	return out, nil
}

// Exited reports whether the plugin process has ended.
func (c *Client) Exited() bool { return c.c.Exited() }

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
