# Test client: Net::HTTP, all requests on one keep-alive connection, in order.
# usage: ruby client.rb URL...   prints "STATUS LEN URL" per request.
require 'net/http'
require 'uri'

urls = ARGV.map { |u| URI(u) }
Net::HTTP.start(urls[0].host, urls[0].port) do |h|
  urls.each do |u|
    r = h.get(u.request_uri)
    puts "#{r.code} #{r.body.to_s.bytesize} #{u}"
    $stdout.flush
  end
end
