# Test server: WEBrick (a thread per connection).
# usage: ruby server.rb HOST PORT [DOWNSTREAM_URL]  (see server.py for paths)
require 'webrick'
require 'net/http'
require 'uri'

host, port, down = ARGV[0], ARGV[1].to_i, ARGV[2].to_s
s = WEBrick::HTTPServer.new(BindAddress: host, Port: port, AccessLog: [],
                            Logger: WEBrick::Log.new($stderr, WEBrick::Log::WARN),
                            StartCallback: -> { puts 'READY'; $stdout.flush })
s.mount_proc('/') do |req, res|
  path = req.request_uri.request_uri
  res['Content-Type'] = 'text/plain'
  if !down.empty?
    r = Net::HTTP.get_response(URI(down + path))
    res.status = r.code.to_i
    res.body = r.body
  elsif path.start_with?('/chunked/')
    res.chunked = true
    res.body = "chunk-one chunk-two #{path}"
  elsif path.start_with?('/big/')
    res.body = 'x' * path.split('/')[2].to_i
  else
    res.body = "ok #{path}"
  end
end
trap('TERM') { s.shutdown }
s.start
