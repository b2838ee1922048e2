-- Test stand-in for prosody-modules' mod_http_health, which neither Debian bookworm's
-- prosody 0.12.3 nor its prosody-modules snapshot ships. Written from the module's
-- documentation, for the probe tests only: GET /health answers 200 "OK" to callers in
-- http_health_allow_ips (default ::1 and 127.0.0.1) or http_health_allow_cidr (default
-- none), and 403 to everyone else.
module:set_global();

local ip_util = require "util.ip";

local allowed_ips = module:get_option_set("http_health_allow_ips", { "::1", "127.0.0.1" });
local allowed_cidr = module:get_option_string("http_health_allow_cidr");

local function caller_allowed(address)
	if allowed_ips:contains(address) then
		return true;
	end
	if not allowed_cidr then
		return false;
	end
	local network, bits = ip_util.parse_cidr(allowed_cidr);
	return ip_util.match(ip_util.new_ip(address), network, bits);
end

module:provides("http", {
	route = {
		GET = function(event)
			if not caller_allowed(event.request.ip) then
				return 403;
			end
			return { status_code = 200; headers = { content_type = "text/plain" }; body = "OK\n" };
		end;
	};
});
