-- salvage's socket-proxy rules (docs/docker-api.md): HAProxy runs `lua.salvage-check` for
-- each request that creates something (a container, a volume, an exec, an image pull), with
-- the configuration's own allowances as its one argument (a JSON text that
-- `salvage proxy-config` writes). The request passes only when the rule of its kind
-- accepts all of it: then the action sets txn.salvage to "allow", and nothing else does.
-- Whatever this script cannot read or does not know, or any error in it, leaves the
-- variable unset, and HAProxy answers 403.
--
-- Bodies are parsed with lua-cjson (Debian's lua-cjson). cjson keeps the last of two equal
-- keys without a word, so the keys of the raw text are counted too: a body whose count
-- differs from the parsed one is refused. A key spelled with an escape is refused; so is
-- any escape in a container's body, and any byte beyond printable ASCII.

local cjson = require("cjson").new()
cjson.decode_invalid_numbers(false)
cjson.decode_max_depth(20)

local NULL = cjson.null

-- Docker's own rule for volume names (and salvage's volume names are such).
local function volume_name(s)
    return type(s) == "string" and s:match("^[A-Za-z0-9][A-Za-z0-9_.-]+$") ~= nil
end

local function container_name(s)
    return s:match("^[A-Za-z0-9][A-Za-z0-9_.-]+$") ~= nil
end

local function is_string(v)
    return type(v) == "string"
end

local function is_bool(v)
    return type(v) == "boolean"
end

local function is_false(v)
    return v == false
end

-- cjson gives an array and an object both as a table: an array's keys are 1..n, an
-- object's are strings (an empty one passes as both; Docker then refuses a wrong type).
local function is_list(v, item)
    if type(v) ~= "table" then
        return false
    end
    local n = 0
    for k in pairs(v) do
        if math.type(k) ~= "integer" then
            return false
        end
        n = n + 1
    end
    for i = 1, n do
        if v[i] == nil or not item(v[i]) then
            return false
        end
    end
    return true
end

local function is_object(v)
    if type(v) ~= "table" then
        return false
    end
    for k in pairs(v) do
        if type(k) ~= "string" then
            return false
        end
    end
    return true
end

local function string_list(v)
    return is_list(v, is_string)
end

-- An object whose every key has a rule in `rules` (key -> predicate of its value, which may
-- also say why not), and whose every `required` key is present. Returns nil, or what is
-- wrong, naming the key after `where` ("" at the top, "HostConfig." inside it).
local function check_object(v, rules, where, required)
    if not is_object(v) then
        return (where == "" and "the body" or where) .. " is not an object"
    end
    for key, value in pairs(v) do
        local rule = rules[key]
        if rule == nil then
            return where .. key .. " is not something salvage sends"
        end
        local ok, why = rule(value)
        if not ok then
            why = why or "not a value salvage sends"
            if why:sub(1, #key + 1) == key .. "." then
                return why -- a nested object's own account
            end
            return where .. key .. ": " .. why
        end
    end
    for _, key in ipairs(required or {}) do
        if v[key] == nil then
            return where .. key .. " is missing"
        end
    end
    return nil
end

local function set_of(list)
    local set = {}
    for _, item in ipairs(list or {}) do
        set[item] = true
    end
    return set
end

-- The raw text, read as JSON tokens: how many object keys it holds, and what it holds that
-- the rules refuse (a byte beyond printable ASCII, a raw tab or line break in a string, an
-- escape in a key or, `no_escape`, anywhere). Once cjson has accepted the text, a string
-- followed by `:` is a key.
local function scan(body, no_escape)
    local bad = body:find("[^\t\n\r\32-\126]")
    if bad then
        return nil, "a byte beyond printable ASCII at " .. bad
    end
    if no_escape and body:find("\\", 1, true) then
        return nil, "an escape (backslash): a container's body has none"
    end
    local keys, pos = 0, 1
    while true do
        local open = body:find('"', pos, true)
        if not open then
            return keys
        end
        local i, escaped = open + 1, false
        while true do
            local j = body:find('["\\]', i)
            if not j then
                return nil, "an unterminated string"
            end
            if body:sub(j, j) == "\\" then
                escaped, i = true, j + 2
            else
                pos = j + 1
                break
            end
        end
        if body:sub(open, pos - 1):find("[\t\n\r]") then
            return nil, "a tab or line break inside a string (JSON escapes them)"
        end
        if body:find("^[ \t\r\n]*:", pos) then
            if escaped then
                return nil, "a key spelled with an escape"
            end
            keys = keys + 1
        end
    end
end

local function count_keys(v)
    if type(v) ~= "table" then
        return 0
    end
    local n = 0
    for k, item in pairs(v) do
        if type(k) == "string" then
            n = n + 1
        end
        n = n + count_keys(item)
    end
    return n
end

-- The body as JSON: the decoded value, or nil and why not.
local function parse(body, no_escape)
    local ok, value = pcall(cjson.decode, body)
    if not ok then
        return nil, "not JSON that salvage sends (" .. tostring(value) .. ")"
    end
    local raw, why = scan(body, no_escape)
    if not raw then
        return nil, why
    end
    if raw ~= count_keys(value) then
        return nil, "a key given twice"
    end
    return value
end

-- Containers -----------------------------------------------------------------------------

local function labels(v)
    if not is_object(v) then
        return false
    end
    for key, value in pairs(v) do
        if not key:match("^salvage%.[a-z0-9._-]+$") or not is_string(value) then
            return false, "only salvage.* labels with text"
        end
    end
    return true
end

-- A bind of a volume: the volume at one of the places salvage mounts them, read-only where
-- salvage mounts it read-only: a restore's look inside (/v) and its scratch volume
-- (/scratch), the target it refills (/target); a stager's source (/source/N) and its
-- stage (/stage/N).
local VOLUME_BINDS = {
    { "^/v$", ":ro" },
    { "^/scratch$", ":ro" },
    { "^/target$", "" },
    { "^/source/[0-9]+$", ":ro" },
    { "^/stage/[0-9]+$", "", "^salvage%-stage%-" },
}

local function volume_bind(bind)
    local source, target, mode = bind:match("^([^:]*):(/[^:]*)(.*)$")
    if not source or not volume_name(source) then
        return false
    end
    for _, allowed in ipairs(VOLUME_BINDS) do
        if target:match(allowed[1]) and mode == allowed[2] then
            return allowed[3] == nil or source:match(allowed[3]) ~= nil
        end
    end
    return false
end

local function mounts_rule(allow)
    local volume_mounts = {}
    for _, pair in ipairs(allow.volume_mounts or {}) do
        volume_mounts[pair[1] .. "\0" .. pair[2]] = true
    end
    -- The volume a crane backs up or restores, at /salvage/volume (read-only for a
    -- backup, without copying the image's files into it); and the crane's configured
    -- volume mounts (a cache), as configured.
    return function(mount)
        if not is_object(mount) or not volume_name(mount.Source) or mount.Type ~= "volume" then
            return false
        end
        if mount.Target == "/salvage/volume" then
            return check_object(mount, {
                Target = is_string,
                Source = is_string,
                Type = is_string,
                ReadOnly = is_bool,
                VolumeOptions = function(o)
                    return check_object(o, { NoCopy = function(x) return x == true end }, "") == nil
                end,
            }, "") == nil
        end
        return volume_mounts[mount.Source .. "\0" .. tostring(mount.Target)] == true
            and check_object(mount, {
                Target = is_string,
                Source = is_string,
                Type = is_string,
                ReadOnly = is_false,
            }, "") == nil
    end
end

local function container_rules(allow)
    local images, host_binds = set_of(allow.images), set_of(allow.binds)
    local mount = mounts_rule(allow)
    local host_config = {
        NetworkMode = function(v)
            return v == "default" or v == "none"
        end,
        Binds = function(v)
            if not is_list(v, is_string) then
                return false
            end
            for _, bind in ipairs(v) do
                if not (host_binds[bind] or volume_bind(bind)) then
                    return false, "a bind salvage does not make: " .. bind
                end
            end
            return true
        end,
        Mounts = function(v)
            return is_list(v, mount), "a mount salvage does not make"
        end,
        -- a crane that streams a dump out keeps no log
        LogConfig = function(v)
            return check_object(v, {
                Type = function(t)
                    return t == "none"
                end,
                Config = function(c)
                    return is_object(c) and next(c) == nil
                end,
            }, "") == nil
        end,
    }
    local top = {
        Image = function(v)
            return images[v] == true, "not a configured crane's image"
        end,
        HostConfig = function(v)
            local why = check_object(v, host_config, "HostConfig.", { "NetworkMode" })
            return why == nil, why
        end,
        Labels = labels,
        Env = string_list,
        Cmd = string_list,
        Entrypoint = string_list,
        User = is_string,
        WorkingDir = is_string,
        Tty = is_false,
        OpenStdin = is_bool,
        StdinOnce = is_bool,
        AttachStdin = is_bool,
        AttachStdout = is_bool,
        AttachStderr = is_bool,
        NetworkDisabled = is_false,
    }
    return function(body)
        return check_object(body, top, "", { "Image", "HostConfig" })
    end
end

-- Commands in containers: never privileged.
local EXEC = {
    Container = is_string,
    User = is_string,
    Privileged = is_false,
    Tty = is_false,
    AttachStdin = is_bool,
    AttachStdout = is_bool,
    AttachStderr = is_bool,
    Cmd = string_list,
    Env = function(v)
        return v == NULL or string_list(v)
    end,
    WorkingDir = is_string,
}

-- Volumes: the local driver, with no options or options that mount no host path or device
-- (an NFS export, a tmpfs).
local MOUNT_FLAGS_REFUSED = set_of({ "bind", "rbind", "remount", "move" })

local function volume_options(v)
    if v == NULL then
        return true
    end
    local why = check_object(v, { type = is_string, device = is_string, o = is_string }, "DriverOpts.")
    if why then
        return false, why
    end
    if v.type == "tmpfs" then
        if v.device ~= nil and v.device ~= "tmpfs" then
            return false, "a tmpfs's device is tmpfs"
        end
    elseif v.type == "nfs" or v.type == "nfs4" then
        if not (v.device or ""):match("^[^/:][^:]*:") and not (v.device or ""):match("^:") then
            return false, "an NFS device is host:path"
        end
    else
        return false, "type: only nfs, nfs4, tmpfs"
    end
    for option in (v.o or ""):gmatch("[^,]+") do
        local name = option:match("^([a-z0-9_]+)=") or option:match("^([a-z0-9_]+)$")
        if not name or MOUNT_FLAGS_REFUSED[name] or name:find("dir", 1, true) then
            return false, "option " .. option
        end
    end
    return true
end

local VOLUME = {
    Name = volume_name,
    Driver = function(v)
        return v == "local", "only the local driver"
    end,
    DriverOpts = volume_options,
    Labels = function(v)
        if v == NULL then
            return true
        end
        if not is_object(v) then
            return false
        end
        for _, value in pairs(v) do
            if not is_string(value) then
                return false
            end
        end
        return true
    end,
}

-- The query string: name=value pairs, each name at most once, percent escapes decoded.
-- Nil and why when it holds anything else (`;`, `+`, a bad escape).
local function query_params(query)
    local params = {}
    if query == nil or query == "" then
        return params
    end
    if query:find("[^A-Za-z0-9._~%%&=-]") then
        return nil, "a character the rules do not read in the query"
    end
    for pair in (query .. "&"):gmatch("([^&]*)&") do
        local name, value = pair:match("^([A-Za-z]+)=(.*)$")
        if not name or params[name] ~= nil or value:find("=", 1, true) then
            return nil, "query parameter " .. pair
        end
        if value:gsub("%%%x%x", ""):find("%", 1, true) then
            return nil, "a bad percent escape"
        end
        params[name] = value:gsub("%%(%x%x)", function(h)
            return string.char(tonumber(h, 16))
        end)
    end
    return params
end

-- The rule of one request: nil, or why it is refused.
local function verdict(txn, allow)
    local method, path = txn.f:method(), txn.f:path()
    local kind = path:match("^/v1%.[0-9]+(/.*)$") or path
    local params, why = query_params(txn.f:query())
    if not params then
        return why
    end
    local body = txn.f:req_body() or ""
    local declared = txn.f:req_body_size() or 0
    if txn.f:req_hdr("transfer-encoding") then
        return "a chunked body"
    end
    if #body ~= declared then
        return "a body not whole in the buffer (" .. declared .. " bytes declared)"
    end
    if #body > allow.cap then
        return "a body larger than " .. allow.cap .. " bytes"
    end
    if method ~= "POST" then
        return "method " .. method
    end
    if kind == "/images/create" then
        if #body > 0 then
            return "a body: an image is pulled, never imported"
        end
        for name in pairs(params) do
            if name ~= "fromImage" and name ~= "tag" then
                return "query parameter " .. name .. ": only fromImage and tag"
            end
        end
        for _, pair in ipairs(allow.pulls) do
            if params.fromImage == pair[1] and params.tag == pair[2] then
                return nil
            end
        end
        return "image " .. tostring(params.fromImage) .. ":" .. tostring(params.tag)
            .. " is no configured crane's"
    end
    local rules, no_escape
    if kind == "/containers/create" then
        for name, value in pairs(params) do
            if name ~= "name" or not container_name(value) then
                return "query parameter " .. name
            end
        end
        rules, no_escape = allow.container, true
    elseif next(params) ~= nil then
        return "a query string"
    elseif kind == "/volumes/create" then
        rules = function(v)
            return check_object(v, VOLUME, "", { "Name" })
        end
    elseif kind:match("^/containers/[A-Za-z0-9_.-]+/exec$") then
        rules = function(v)
            return check_object(v, EXEC, "", { "Cmd" })
        end
    else
        return "no rule for " .. method .. " " .. path
    end
    local value, bad = parse(body, no_escape)
    if value == nil then
        return bad
    end
    return rules(value)
end

-- The configuration's allowances, parsed once per distinct argument.
local allowances = {}

local function allowance(arg)
    local found = allowances[arg]
    if found == nil then
        found = cjson.decode(arg)
        assert(type(found.cap) == "number", "no cap")
        found.container = container_rules(found)
        allowances[arg] = found
    end
    return found
end

core.register_action("salvage-check", { "http-req" }, function(txn, arg)
    local ok, why = pcall(function()
        return verdict(txn, allowance(arg))
    end)
    local said = "salvage proxy: " .. txn.f:method() .. " " .. txn.f:path()
    if ok and why == nil then
        txn:set_var("txn.salvage", "allow")
        txn:log(core.info, said .. ": allowed, " .. (txn.f:req_body_len() or 0) .. " bytes")
        return
    end
    txn:log(core.warning, said .. ": refused: " .. tostring(why))
end, 1)
