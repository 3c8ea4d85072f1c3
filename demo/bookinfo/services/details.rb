#!/usr/bin/env ruby
# details: a WEBrick service (thread per connection), no downstream calls.
# Logs the X-ZT-Marker header of each request with its connection and its
# position on that connection (a ZTGT line): the tests' ground truth.
# With ZT_TLS_CERT and ZT_TLS_KEY set (TLS variants) it serves HTTPS with
# Ruby's openssl (the system libssl), the handshake on the connection's thread.
require 'webrick'

$stdout.sync = true
port = (ARGV[0] || 9081).to_i
config = { BindAddress: '127.0.0.1', Port: port, Logger: WEBrick::Log.new(File::NULL), AccessLog: [] }
if ENV['ZT_TLS_CERT']
  require 'webrick/https'
  config.merge!(SSLEnable: true, SSLCertificate: OpenSSL::X509::Certificate.new(File.read(ENV['ZT_TLS_CERT'])),
                SSLPrivateKey: OpenSSL::PKey.read(File.read(ENV['ZT_TLS_KEY'])))
end
srv = WEBrick::HTTPServer.new(**config)
srv.mount_proc '/details' do |req, res|
  # WEBrick serves a connection on one thread: count its requests there.
  conn = Thread.current[:zt_conn]
  conn = Thread.current[:zt_conn] = { peer: req.peeraddr, n: 0 } if conn.nil? || conn[:peer] != req.peeraddr
  conn[:n] += 1
  marker = req['X-ZT-Marker'].to_s
  puts "ZTGT #{marker.empty? ? '-' : marker} #{req.peeraddr[3]} #{req.peeraddr[1]} #{req.addr[3]} #{req.addr[1]} #{conn[:n]}"
  id = req.path.split('/').last
  res['Content-Type'] = 'application/json'
  res.body = %({"id":#{id.to_i},"author":"William Shakespeare","year":1595,"type":"paperback","pages":200})
end
trap('TERM') { srv.shutdown }
puts 'READY'
srv.start
