#!/usr/bin/env ruby
# details: a WEBrick service (thread per request), no downstream calls.
require 'webrick'

port = (ARGV[0] || 9081).to_i
srv = WEBrick::HTTPServer.new(BindAddress: '127.0.0.1', Port: port, Logger: WEBrick::Log.new(File::NULL),
                              AccessLog: [])
srv.mount_proc '/details' do |req, res|
  id = req.path.split('/').last
  res['Content-Type'] = 'application/json'
  res.body = %({"id":#{id.to_i},"author":"William Shakespeare","year":1595,"type":"paperback","pages":200})
end
trap('TERM') { srv.shutdown }
puts 'READY'
$stdout.flush
srv.start
