package ebpf

//go:generate go tool bpf2go -cc clang-14 -target bpfel -type event -type body_key -type body_range -type tls_call Socket ../../bpf/socket/socket.bpf.c -- -I../../bpf/include -I../../bpf/socket
