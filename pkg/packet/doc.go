// Package packet decodes captured frames without allocating: Ethernet,
// VLAN/QinQ, IPv4, IPv6 (extension headers skipped), one level of tunnel
// (VXLAN, Geneve, GRE with transparent Ethernet bridging, IPIP 4in4 and
// 6in4), and the inner TCP or UDP header. The inner headers give the flow
// and the TCP sequence number; the tunnel type and outer addresses are kept.
package packet
