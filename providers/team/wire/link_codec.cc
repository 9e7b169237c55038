#include "wire/link_codec.h"

#include <capnp/any.h>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <kj/array.h>
#include <kj/exception.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <tuple>

#include "link.capnp.h"
#include "wire/capnp_fields.h"

namespace portcullis::team {
namespace {

using wirecheck::alignedWords;
using wirecheck::kMaxDeviceSeq;
using wirecheck::kMaxUserIdBytes;
using wirecheck::readerOptions;
using wirecheck::toBytes;
using wirecheck::view;

// The schema's types live in the global namespace (link.capnp names none); `wire` keeps them
// apart from link.h's value types of the same names.
namespace wire {
using Link = ::Link;
using LinkBody = ::LinkBody;
using Device = ::Device;
using NewDevice = ::NewDevice;
using Lockbox = ::Lockbox;
using KeyGeneration = ::KeyGeneration;
using Root = ::Root;
using AddMember = ::AddMember;
using Invite = ::Invite;
using AdmitMember = ::AdmitMember;
using AdmitDevice = ::AdmitDevice;
using AddDevice = ::AddDevice;
using MemberRole = ::MemberRole;
using DocumentAccess = ::DocumentAccess;
using Server = ::Server;
using Which = ::LinkBody::Action::Which;
}  // namespace wire

constexpr std::string_view kLinkSigTag = "portcullis/team/v3/link-sig";
constexpr std::string_view kLinkHashTag = "portcullis/team/v3/link";
constexpr std::string_view kAdmissionTag = "portcullis/team/v3/admission";
constexpr std::string_view kEncCheckTag = "portcullis/team/v3/enc-check";
// The canonical u-coordinates of small order (see encKeyAcceptable), little-endian.
constexpr std::array<EncKey, 5> kSmallOrderU = {{
    {0},  // 0: order 2 (curve and twist)
    {1},  // 1: order 4
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0x7f},  // p - 1: order 4
    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
     0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
     0xb8, 0x00},  // order 8
    {0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
     0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
     0x11, 0x57},  // order 8
}};

// A `Link` is the body plus a signature and its two pointers: a KiB is ample for the envelope.
constexpr std::size_t kMaxLinkBytes = kMaxLinkBodyBytes + 1024;
constexpr std::size_t kMaxTeamNameBytes = 128;
constexpr std::size_t kMaxRoleBytes = 32;
constexpr std::uint16_t kLastKnownAction = wire::Which::ROTATE_KEYS;
constexpr std::uint16_t kLastLevel = static_cast<std::uint16_t>(::Level::WRITE);
constexpr std::string_view kTeamScope = "team";
constexpr std::string_view kRoleScopePrefix = "role:";

Error malformed(std::string_view what) {
  return Error(Errc::Malformed, "team link: " + std::string(what));
}

ByteView view(std::string_view s) {
  return ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

template <std::size_t N>
capnp::Data::Reader data(const std::array<std::uint8_t, N>& a) {
  return capnp::Data::Reader(a.data(), N);
}
capnp::Text::Reader text(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF) without C0 controls,
// DEL or C1 controls.
// Valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF); unless `controls`,
// also without C0 controls, DEL or C1 controls.
bool utf8(std::string_view s, bool controls) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned lead = p[i];
    if (lead < 0x80) {
      if (!controls && (lead < 0x20 || lead == 0x7F)) return false;
      ++i;
      continue;
    }
    std::size_t len = 0;
    std::uint32_t cp = 0;
    std::uint32_t least = 0;
    if ((lead & 0xE0) == 0xC0) {
      len = 2, cp = lead & 0x1F, least = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      len = 3, cp = lead & 0x0F, least = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      len = 4, cp = lead & 0x07, least = 0x10000;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const unsigned cont = p[i + k];
      if ((cont & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cont & 0x3F);
    }
    if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
        (!controls && cp >= 0x80 && cp <= 0x9F)) {
      return false;
    }
    i += len;
  }
  return true;
}

bool scopeAcceptable(std::string_view scope) {
  return scope == kTeamScope ||
         (scope.starts_with(kRoleScopePrefix) &&
          roleAcceptable(scope.substr(kRoleScopePrefix.size())));
}

bool lockboxBefore(const Lockbox& a, const Lockbox& b) {
  // std::optional orders null first, as §2.1 wants for `generation`.
  return std::tie(a.recipient, a.generation) < std::tie(b.recipient, b.generation);
}

// Check 1 over a canonical LinkBody. Every reader call may throw kj::Exception on a pointer of the
// wrong kind; the caller turns that into Malformed.
class BodyChecker : public wirecheck::FieldChecker {
 public:
  // False: the link is dropped, failure() says why. True: `out` holds the body; unknown() says
  // whether it is of a later version.
  bool body(wire::LinkBody::Reader r, LinkBody& out) {
    if (!hashes(r.hasPrev(), r.getPrev(), kMaxPrev, out.prev, "prev", /*optional=*/true)) {
      return false;
    }
    if (!userId(r.hasUserId(), r.getUserId(), out.userId, "userId")) return false;
    if (!fixed(r.hasDeviceId(), r.getDeviceId(), out.deviceId, "deviceId")) return false;
    out.deviceSeq = r.getDeviceSeq();
    if (out.deviceSeq < 1 || out.deviceSeq > kMaxDeviceSeq) {
      return fail("deviceSeq", "not in 1 .. 2^32-1");
    }
    out.timestamp = r.getTimestamp();
    noteShape<wire::LinkBody>(r);

    const auto a = r.getAction();
    const auto which = static_cast<std::uint16_t>(a.which());
    if (which > kLastKnownAction) {
      unknown_ = true;
      out.action = UnknownAction{which};
      return true;
    }
    discriminant_ = which;
    return action(a, out.action);
  }

  bool unknown() const noexcept { return unknown_; }
  std::uint16_t discriminant() const noexcept { return discriminant_; }

 private:
  // A struct with words of a later version makes the link unknown (§2.3).
  template <typename T>
  void noteShape(typename T::Reader r) {
    unknown_ = unknown_ || wider<T>(r);
  }

  bool encKey(bool has, capnp::Data::Reader d, EncKey& out, std::string_view field) {
    if (!fixed(has, d, out, field)) return false;
    if (!encKeyAcceptable(out)) return fail(field, "not canonical or of small order");
    return true;
  }

  // Null Text reads as empty.
  bool textField(bool has, capnp::Text::Reader t, std::size_t lo, std::size_t hi,
                 std::string& out, std::string_view field) {
    const std::string_view s = has ? view(t) : std::string_view();
    if (!textAcceptable(s, lo, hi)) return fail(field, "bad text or length");
    out.assign(s);
    return true;
  }

  bool userId(bool has, capnp::Text::Reader t, std::string& out, std::string_view field) {
    return textField(has, t, 1, kMaxUserIdBytes, out, field);
  }

  bool role(bool has, capnp::Text::Reader t, std::string& out, std::string_view field) {
    const std::string_view s = has ? view(t) : std::string_view();
    if (!roleAcceptable(s)) return fail(field, "not 1-32 bytes of [a-z0-9_-]");
    out.assign(s);
    return true;
  }

  bool newDevice(bool has, wire::NewDevice::Reader r, NewDevice& out, std::string_view field) {
    if (!has) return fail(field, "missing");
    noteShape<wire::NewDevice>(r);
    return fixed(r.hasDeviceId(), r.getDeviceId(), out.deviceId, "device.deviceId") &&
           encKey(r.hasEncKey(), r.getEncKey(), out.encKey, "device.encKey") &&
           fixed(r.hasConsent(), r.getConsent(), out.consent, "device.consent");
  }

  bool lockboxes(bool has, capnp::List<wire::Lockbox>::Reader l, Lockboxes& out,
                 std::string_view field) {
    if (!has) {
      out.reset();
      return true;
    }
    if (!list(l, kMaxLockboxes, capnp::ElementSize::INLINE_COMPOSITE, field)) return false;
    std::vector<Lockbox> boxes(l.size());
    for (unsigned i = 0; i < l.size(); ++i) {
      const auto e = l[i];
      noteShape<wire::Lockbox>(e);
      Lockbox& b = boxes[i];
      if (!fixed(e.hasRecipient(), e.getRecipient(), b.recipient, "lockbox.recipient") ||
          !optionalFixed(e.hasGeneration(), e.getGeneration(), b.generation,
                         "lockbox.generation") ||
          !fixed(e.hasSealed(), e.getSealed(), b.sealed, "lockbox.sealed")) {
        return false;
      }
      if (i > 0 && !lockboxBefore(boxes[i - 1], b)) return fail(field, "not strictly ascending");
    }
    out = std::move(boxes);
    return true;
  }

  bool keyGeneration(wire::KeyGeneration::Reader r, KeyGeneration& out, std::string_view field) {
    noteShape<wire::KeyGeneration>(r);
    const std::string_view scope = r.hasScope() ? view(r.getScope()) : std::string_view();
    if (!scopeAcceptable(scope)) return fail(field, "scope is neither team nor role:<role>");
    out.scope.assign(scope);
    return optionalFixed(r.hasCheck(), r.getCheck(), out.check, "check") &&
           optionalFixed(r.hasPrevious(), r.getPrevious(), out.previous, "previous") &&
           optionalFixed(r.hasPrevBox(), r.getPrevBox(), out.prevBox, "prevBox") &&
           lockboxes(r.hasLockboxes(), r.getLockboxes(), out.lockboxes, "lockboxes");
  }

  bool invite(wire::Invite::Reader r, Invite& out) {
    noteShape<wire::Invite>(r);
    out.maxUses = r.getMaxUses();
    out.expiresAt = r.getExpiresAt();
    return fixed(r.hasPublicKey(), r.getPublicKey(), out.publicKey, "invite.publicKey");
  }

  bool memberRole(wire::MemberRole::Reader r, MemberRole& out) {
    noteShape<wire::MemberRole>(r);
    return userId(r.hasUserId(), r.getUserId(), out.userId, "memberRole.userId") &&
           role(r.hasRole(), r.getRole(), out.role, "memberRole.role") &&
           lockboxes(r.hasLockboxes(), r.getLockboxes(), out.lockboxes, "memberRole.lockboxes");
  }

  bool root(wire::Root::Reader r, Root& out) {
    noteShape<wire::Root>(r);
    if (!textField(r.hasTeamName(), r.getTeamName(), 0, kMaxTeamNameBytes, out.teamName,
                   "root.teamName")) {
      return false;
    }
    if (!r.hasFounder()) return fail("root.founder", "missing");
    const auto founder = r.getFounder();
    noteShape<wire::Device>(founder);
    if (!fixed(founder.hasDeviceId(), founder.getDeviceId(), out.founder.deviceId,
               "root.founder.deviceId") ||
        !encKey(founder.hasEncKey(), founder.getEncKey(), out.founder.encKey,
                "root.founder.encKey") ||
        !optionalFixed(r.hasRecoveryKey(), r.getRecoveryKey(), out.recoveryKey,
                       "root.recoveryKey")) {
      return false;
    }
    out.version = r.getVersion();
    if (out.version != 3 && out.version != 4) return fail("root.version", "neither 3 nor 4");
    if (r.hasTeamKeys()) {
      KeyGeneration keys;
      if (!keyGeneration(r.getTeamKeys(), keys, "root.teamKeys")) return false;
      if (keys.scope != kTeamScope) return fail("root.teamKeys", "scope is not team");
      if (!keys.check) return fail("root.teamKeys", "no check");
      out.teamKeys = std::move(keys);
    }
    return true;
  }

  bool addMember(wire::AddMember::Reader r, AddMember& out) {
    noteShape<wire::AddMember>(r);
    if (!userId(r.hasUserId(), r.getUserId(), out.userId, "addMember.userId")) return false;
    if (!r.hasDevices()) return fail("addMember.devices", "missing");
    const auto devices = r.getDevices();
    if (!list(devices, kMaxDevicesPerLink, capnp::ElementSize::INLINE_COMPOSITE,
              "addMember.devices")) {
      return false;
    }
    out.devices.resize(devices.size());
    for (unsigned i = 0; i < devices.size(); ++i) {
      if (!newDevice(true, devices[i], out.devices[i], "addMember.devices")) return false;
      if (i > 0 && !(out.devices[i - 1].deviceId < out.devices[i].deviceId)) {
        return fail("addMember.devices", "not strictly ascending");
      }
    }
    if (r.hasRoles()) {
      const auto roles = r.getRoles();
      if (!list(roles, kMaxRoles, capnp::ElementSize::POINTER, "addMember.roles")) return false;
      std::vector<std::string> names(roles.size());
      for (unsigned i = 0; i < roles.size(); ++i) {
        if (!role(true, roles[i], names[i], "addMember.roles")) return false;
        if (i > 0 && !(names[i - 1] < names[i])) {
          return fail("addMember.roles", "not strictly ascending");
        }
      }
      out.roles = std::move(names);
    }
    return lockboxes(r.hasLockboxes(), r.getLockboxes(), out.lockboxes, "addMember.lockboxes");
  }

  bool documentAccess(wire::DocumentAccess::Reader r, SetDocumentAccess& out) {
    noteShape<wire::DocumentAccess>(r);
    if (!optionalFixed(r.hasDocument(), r.getDocument(), out.document, "access.document")) {
      return false;
    }
    const auto p = r.getPrincipal();
    switch (p.which()) {
      case ::DocumentAccess::Principal::EVERYONE:
        out.principal.kind = Principal::Kind::Everyone;
        break;
      case ::DocumentAccess::Principal::ROLE:
        out.principal.kind = Principal::Kind::Role;
        if (!role(p.hasRole(), p.getRole(), out.principal.name, "principal.role")) return false;
        break;
      case ::DocumentAccess::Principal::MEMBER:
        out.principal.kind = Principal::Kind::Member;
        if (!userId(p.hasMember(), p.getMember(), out.principal.name, "principal.member")) {
          return false;
        }
        break;
      case ::DocumentAccess::Principal::SERVER:
        out.principal.kind = Principal::Kind::Server;
        if (!fixed(p.hasServer(), p.getServer(), out.principal.server, "principal.server")) {
          return false;
        }
        break;
      default:
        return fail("principal", "unknown member");
    }
    const auto level = static_cast<std::uint16_t>(r.getLevel());
    if (level > kLastLevel) return fail("access.level", "out of range");
    out.level = static_cast<Level>(level);
    return true;
  }

  bool action(wire::LinkBody::Action::Reader a, Action& out) {
    switch (a.which()) {
      case wire::Which::ROOT: {
        if (!a.hasRoot()) return fail("root", "missing");
        Root v;
        if (!root(a.getRoot(), v)) return false;
        out = std::move(v);
        return true;
      }
      case wire::Which::ADD_MEMBER: {
        if (!a.hasAddMember()) return fail("addMember", "missing");
        AddMember v;
        if (!addMember(a.getAddMember(), v)) return false;
        out = std::move(v);
        return true;
      }
      case wire::Which::INVITE_MEMBER: {
        if (!a.hasInviteMember()) return fail("inviteMember", "missing");
        InviteMember v;
        if (!invite(a.getInviteMember(), v)) return false;
        out = v;
        return true;
      }
      case wire::Which::INVITE_DEVICE: {
        if (!a.hasInviteDevice()) return fail("inviteDevice", "missing");
        InviteDevice v;
        if (!invite(a.getInviteDevice(), v)) return false;
        if (v.maxUses != 1) return fail("inviteDevice.maxUses", "not 1");
        out = v;
        return true;
      }
      case wire::Which::REVOKE_INVITATION: {
        RevokeInvitation v;
        if (!fixed(a.hasRevokeInvitation(), a.getRevokeInvitation(), v.invitation,
                   "revokeInvitation")) {
          return false;
        }
        out = v;
        return true;
      }
      case wire::Which::ADMIT_MEMBER: {
        if (!a.hasAdmitMember()) return fail("admitMember", "missing");
        const auto r = a.getAdmitMember();
        noteShape<wire::AdmitMember>(r);
        AdmitMember v;
        if (!fixed(r.hasInvitation(), r.getInvitation(), v.invitation,
                   "admitMember.invitation") ||
            !userId(r.hasUserId(), r.getUserId(), v.userId, "admitMember.userId") ||
            !newDevice(r.hasDevice(), r.getDevice(), v.device, "admitMember.device") ||
            !fixed(r.hasInviteSig(), r.getInviteSig(), v.inviteSig, "admitMember.inviteSig") ||
            !lockboxes(r.hasLockboxes(), r.getLockboxes(), v.lockboxes,
                       "admitMember.lockboxes")) {
          return false;
        }
        out = std::move(v);
        return true;
      }
      case wire::Which::ADMIT_DEVICE: {
        if (!a.hasAdmitDevice()) return fail("admitDevice", "missing");
        const auto r = a.getAdmitDevice();
        noteShape<wire::AdmitDevice>(r);
        AdmitDevice v;
        if (!fixed(r.hasInvitation(), r.getInvitation(), v.invitation,
                   "admitDevice.invitation") ||
            !newDevice(r.hasDevice(), r.getDevice(), v.device, "admitDevice.device") ||
            !fixed(r.hasInviteSig(), r.getInviteSig(), v.inviteSig, "admitDevice.inviteSig") ||
            !lockboxes(r.hasLockboxes(), r.getLockboxes(), v.lockboxes,
                       "admitDevice.lockboxes")) {
          return false;
        }
        out = std::move(v);
        return true;
      }
      case wire::Which::ADD_DEVICE: {
        if (!a.hasAddDevice()) return fail("addDevice", "missing");
        const auto r = a.getAddDevice();
        noteShape<wire::AddDevice>(r);
        AddDevice v;
        if (!userId(r.hasUserId(), r.getUserId(), v.userId, "addDevice.userId") ||
            !newDevice(r.hasDevice(), r.getDevice(), v.device, "addDevice.device") ||
            !lockboxes(r.hasLockboxes(), r.getLockboxes(), v.lockboxes,
                       "addDevice.lockboxes")) {
          return false;
        }
        out = std::move(v);
        return true;
      }
      case wire::Which::REMOVE_DEVICE: {
        RemoveDevice v;
        if (!fixed(a.hasRemoveDevice(), a.getRemoveDevice(), v.deviceId, "removeDevice")) {
          return false;
        }
        out = v;
        return true;
      }
      case wire::Which::REMOVE_MEMBER: {
        RemoveMember v;
        if (!userId(a.hasRemoveMember(), a.getRemoveMember(), v.userId, "removeMember")) {
          return false;
        }
        out = std::move(v);
        return true;
      }
      case wire::Which::ADD_MEMBER_ROLE: {
        if (!a.hasAddMemberRole()) return fail("addMemberRole", "missing");
        AddMemberRole v;
        if (!memberRole(a.getAddMemberRole(), v)) return false;
        out = std::move(v);
        return true;
      }
      case wire::Which::REMOVE_MEMBER_ROLE: {
        if (!a.hasRemoveMemberRole()) return fail("removeMemberRole", "missing");
        RemoveMemberRole v;
        if (!memberRole(a.getRemoveMemberRole(), v)) return false;
        out = std::move(v);
        return true;
      }
      case wire::Which::SET_DOCUMENT_ACCESS: {
        if (!a.hasSetDocumentAccess()) return fail("setDocumentAccess", "missing");
        SetDocumentAccess v;
        if (!documentAccess(a.getSetDocumentAccess(), v)) return false;
        out = std::move(v);
        return true;
      }
      case wire::Which::ADD_SERVER: {
        if (!a.hasAddServer()) return fail("addServer", "missing");
        const auto r = a.getAddServer();
        noteShape<wire::Server>(r);
        AddServer v;
        if (!fixed(r.hasServerId(), r.getServerId(), v.serverId, "addServer.serverId") ||
            !encKey(r.hasEncKey(), r.getEncKey(), v.encKey, "addServer.encKey")) {
          return false;
        }
        out = v;
        return true;
      }
      case wire::Which::REMOVE_SERVER: {
        RemoveServer v;
        if (!fixed(a.hasRemoveServer(), a.getRemoveServer(), v.serverId, "removeServer")) {
          return false;
        }
        out = v;
        return true;
      }
      case wire::Which::ROTATE_KEYS: {
        if (!a.hasRotateKeys()) return fail("rotateKeys", "missing");
        RotateKeys v;
        if (!keyGeneration(a.getRotateKeys(), v.generation, "rotateKeys")) return false;
        out = std::move(v);
        return true;
      }
    }
    return fail("action", "unknown member");  // unreachable: body() screened the discriminant
  }

  bool unknown_ = false;
  std::uint16_t discriminant_ = 0;
};

// Check 2's second half: each device the link introduces signed its admission tuple (§5.1).
bool consentsVerify(const Action& action, const Hash& teamId) {
  static constexpr Hash kNoInvitation{};
  const auto consentOk = [&](const Hash& inv, const NewDevice& d, std::string_view userId) {
    return verifyBytes(admissionTuple(teamId, inv, d.deviceId, d.encKey, userId), d.consent,
                       d.deviceId);
  };
  if (const auto* a = std::get_if<AddMember>(&action)) {
    return std::ranges::all_of(
        a->devices, [&](const NewDevice& d) { return consentOk(kNoInvitation, d, a->userId); });
  }
  if (const auto* a = std::get_if<AddDevice>(&action)) {
    return consentOk(kNoInvitation, a->device, a->userId);
  }
  if (const auto* a = std::get_if<AdmitMember>(&action)) {
    return consentOk(a->invitation, a->device, a->userId);
  }
  if (const auto* a = std::get_if<AdmitDevice>(&action)) {
    return consentOk(a->invitation, a->device, std::string_view());
  }
  return true;
}


// Encoding helpers: set exactly the present fields, so that decode(encode(x)) == x.
template <typename Init>
void putLockboxes(const Lockboxes& boxes, Init init) {
  if (!boxes) return;
  auto list = init(static_cast<unsigned>(boxes->size()));
  for (unsigned i = 0; i < boxes->size(); ++i) {
    const Lockbox& b = (*boxes)[i];
    auto e = list[i];
    e.setRecipient(data(b.recipient));
    if (b.generation) e.setGeneration(data(*b.generation));
    e.setSealed(data(b.sealed));
  }
}

void putKeyGeneration(wire::KeyGeneration::Builder b, const KeyGeneration& g) {
  if (!g.scope.empty()) b.setScope(text(g.scope));
  if (g.check) b.setCheck(data(*g.check));
  if (g.previous) b.setPrevious(data(*g.previous));
  if (g.prevBox) b.setPrevBox(data(*g.prevBox));
  putLockboxes(g.lockboxes, [&](unsigned n) { return b.initLockboxes(n); });
}

void putNewDevice(wire::NewDevice::Builder b, const NewDevice& d) {
  b.setDeviceId(data(d.deviceId));
  b.setEncKey(data(d.encKey));
  b.setConsent(data(d.consent));
}

void putInvite(wire::Invite::Builder b, const Invite& v) {
  b.setPublicKey(data(v.publicKey));
  b.setMaxUses(v.maxUses);
  b.setExpiresAt(v.expiresAt);
}

void putMemberRole(wire::MemberRole::Builder b, const MemberRole& v) {
  if (!v.userId.empty()) b.setUserId(text(v.userId));
  if (!v.role.empty()) b.setRole(text(v.role));
  putLockboxes(v.lockboxes, [&](unsigned n) { return b.initLockboxes(n); });
}

void putAction(wire::LinkBody::Action::Builder a, const Action& action) {
  switch (typeOf(action)) {
    case ActionType::Root: {
      const auto& v = std::get<Root>(action);
      auto b = a.initRoot();
      if (!v.teamName.empty()) b.setTeamName(text(v.teamName));
      auto founder = b.initFounder();
      founder.setDeviceId(data(v.founder.deviceId));
      founder.setEncKey(data(v.founder.encKey));
      if (v.recoveryKey) b.setRecoveryKey(data(*v.recoveryKey));
      b.setVersion(v.version);
      if (v.teamKeys) putKeyGeneration(b.initTeamKeys(), *v.teamKeys);
      return;
    }
    case ActionType::AddMember: {
      const auto& v = std::get<AddMember>(action);
      auto b = a.initAddMember();
      if (!v.userId.empty()) b.setUserId(text(v.userId));
      if (!v.devices.empty()) {
        auto devices = b.initDevices(static_cast<unsigned>(v.devices.size()));
        for (unsigned i = 0; i < v.devices.size(); ++i) putNewDevice(devices[i], v.devices[i]);
      }
      if (v.roles) {
        auto roles = b.initRoles(static_cast<unsigned>(v.roles->size()));
        for (unsigned i = 0; i < v.roles->size(); ++i) roles.set(i, text((*v.roles)[i]));
      }
      putLockboxes(v.lockboxes, [&](unsigned n) { return b.initLockboxes(n); });
      return;
    }
    case ActionType::InviteMember:
      putInvite(a.initInviteMember(), std::get<InviteMember>(action));
      return;
    case ActionType::InviteDevice:
      putInvite(a.initInviteDevice(), std::get<InviteDevice>(action));
      return;
    case ActionType::RevokeInvitation:
      a.setRevokeInvitation(data(std::get<RevokeInvitation>(action).invitation));
      return;
    case ActionType::AdmitMember: {
      const auto& v = std::get<AdmitMember>(action);
      auto b = a.initAdmitMember();
      b.setInvitation(data(v.invitation));
      if (!v.userId.empty()) b.setUserId(text(v.userId));
      putNewDevice(b.initDevice(), v.device);
      b.setInviteSig(data(v.inviteSig));
      putLockboxes(v.lockboxes, [&](unsigned n) { return b.initLockboxes(n); });
      return;
    }
    case ActionType::AdmitDevice: {
      const auto& v = std::get<AdmitDevice>(action);
      auto b = a.initAdmitDevice();
      b.setInvitation(data(v.invitation));
      putNewDevice(b.initDevice(), v.device);
      b.setInviteSig(data(v.inviteSig));
      putLockboxes(v.lockboxes, [&](unsigned n) { return b.initLockboxes(n); });
      return;
    }
    case ActionType::AddDevice: {
      const auto& v = std::get<AddDevice>(action);
      auto b = a.initAddDevice();
      if (!v.userId.empty()) b.setUserId(text(v.userId));
      putNewDevice(b.initDevice(), v.device);
      putLockboxes(v.lockboxes, [&](unsigned n) { return b.initLockboxes(n); });
      return;
    }
    case ActionType::RemoveDevice:
      a.setRemoveDevice(data(std::get<RemoveDevice>(action).deviceId));
      return;
    case ActionType::RemoveMember:
      // An empty userId still has to select the union member: it becomes an empty Text.
      a.setRemoveMember(text(std::get<RemoveMember>(action).userId));
      return;
    case ActionType::AddMemberRole:
      putMemberRole(a.initAddMemberRole(), std::get<AddMemberRole>(action));
      return;
    case ActionType::RemoveMemberRole:
      putMemberRole(a.initRemoveMemberRole(), std::get<RemoveMemberRole>(action));
      return;
    case ActionType::SetDocumentAccess: {
      const auto& v = std::get<SetDocumentAccess>(action);
      auto b = a.initSetDocumentAccess();
      if (v.document) b.setDocument(data(*v.document));
      auto p = b.initPrincipal();
      switch (v.principal.kind) {
        case Principal::Kind::Everyone: p.setEveryone(); break;
        case Principal::Kind::Role: p.setRole(text(v.principal.name)); break;
        case Principal::Kind::Member: p.setMember(text(v.principal.name)); break;
        case Principal::Kind::Server: p.setServer(data(v.principal.server)); break;
      }
      b.setLevel(static_cast<::Level>(v.level));
      return;
    }
    case ActionType::AddServer: {
      const auto& v = std::get<AddServer>(action);
      auto b = a.initAddServer();
      b.setServerId(data(v.serverId));
      b.setEncKey(data(v.encKey));
      return;
    }
    case ActionType::RemoveServer:
      a.setRemoveServer(data(std::get<RemoveServer>(action).serverId));
      return;
    case ActionType::RotateKeys:
      putKeyGeneration(a.initRotateKeys(), std::get<RotateKeys>(action).generation);
      return;
    case ActionType::Unknown:
      break;
  }
  // PORTCULLIS_REQUIRE's contract; providers see only portcullis/*.h, so it is spelled out.
  throw std::logic_error("encodeLinkBody: an UnknownAction cannot be encoded by this version");
}

}  // namespace

bool textAcceptable(std::string_view text, std::size_t lo, std::size_t hi) {
  return text.size() >= lo && text.size() <= hi && utf8(text, false);
}

bool utf8Valid(std::string_view text) { return utf8(text, true); }

bool roleAcceptable(std::string_view role) {
  return !role.empty() && role.size() <= kMaxRoleBytes &&
         std::ranges::all_of(role, [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
         });
}

namespace {
// Canonical: the top bit is clear and the little-endian value is below p = 2^255 - 19, whose
// bytes are ed ff .. ff 7f.
bool canonicalU(const EncKey& key) {
  if (key[31] & 0x80) return false;
  return !(key[31] == 0x7F && key[0] >= 0xED &&
           std::all_of(key.begin() + 1, key.begin() + 31, [](std::uint8_t b) { return b == 0xFF; }));
}
}  // namespace

bool encKeyAcceptable(const EncKey& key) {
  if (!canonicalU(key)) return false;
  // §2.3 defines "small order" as crypto_scalarmult with a fixed scalar returning -1. The clamped
  // scalar is a multiple of 8, so that happens exactly for the u-coordinates of points of order
  // dividing 8 on the curve (Z/8 × Z/ℓ) or 4 on its twist (Z/4 × Z/ℓ'): canonically 0, 1, p − 1
  // and the two points of order 8. Comparing with those five costs nothing, where the scalar
  // multiplication was a fifth of loading a team; link_codec_test checks that both agree.
  return std::none_of(kSmallOrderU.begin(), kSmallOrderU.end(),
                      [&](const EncKey& u) { return sodium_memcmp(u.data(), key.data(), 32) == 0; });
}

bool encKeyAcceptableByScalarMult(const EncKey& key) {
  if (!canonicalU(key)) return false;
  std::array<std::uint8_t, crypto_scalarmult_SCALARBYTES> scalar{};
  crypto_generichash(scalar.data(), scalar.size(),
                     reinterpret_cast<const unsigned char*>(kEncCheckTag.data()),
                     kEncCheckTag.size(), nullptr, 0);
  std::array<std::uint8_t, crypto_scalarmult_BYTES> point{};
  const bool smallOrder = crypto_scalarmult(point.data(), scalar.data(), key.data()) == -1;
  sodium_memzero(point.data(), point.size());
  return !smallOrder;
}

Bytes admissionTuple(const Hash& teamId, const Hash& invitation, const Key& deviceId,
                     const EncKey& encKey, std::string_view userId) {
  if (userId.size() > 0xFF) throw std::logic_error("admissionTuple: userId over 255 bytes");
  Bytes out;
  out.reserve(kAdmissionTag.size() + 4 * 32 + 1 + userId.size());
  const auto append = [&](ByteView b) { out.insert(out.end(), b.begin(), b.end()); };
  append(view(kAdmissionTag));
  append(teamId);
  append(invitation);
  append(deviceId);
  append(encKey);
  out.push_back(static_cast<std::uint8_t>(userId.size()));
  append(view(userId));
  return out;
}

Signature signBytes(ByteView message, std::span<const std::uint8_t, 64> secretKey) {
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secretKey.data());
  return sig;
}

bool verifyBytes(ByteView message, const Signature& signature, const Key& publicKey) {
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     publicKey.data()) == 0;
}

Signature signLinkBody(ByteView body, std::span<const std::uint8_t, 64> secretKey) {
  Bytes message(kLinkSigTag.begin(), kLinkSigTag.end());
  message.insert(message.end(), body.begin(), body.end());
  return signBytes(message, secretKey);
}

Hash linkHash(ByteView body, const Signature& signature) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, crypto_generichash_BYTES);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(kLinkHashTag.data()),
                            kLinkHashTag.size());
  crypto_generichash_update(&state, body.data(), body.size());
  crypto_generichash_update(&state, signature.data(), signature.size());
  Hash out{};
  crypto_generichash_final(&state, out.data(), out.size());
  return out;
}

Bytes encodeLinkBody(const LinkBody& body) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::LinkBody>();
  if (!body.prev.empty()) {
    auto prev = root.initPrev(static_cast<unsigned>(body.prev.size()));
    for (unsigned i = 0; i < body.prev.size(); ++i) prev.set(i, data(body.prev[i]));
  }
  if (!body.userId.empty()) root.setUserId(text(body.userId));
  root.setDeviceId(data(body.deviceId));
  root.setDeviceSeq(body.deviceSeq);
  root.setTimestamp(body.timestamp);
  putAction(root.getAction(), body.action);
  return toBytes(capnp::canonicalize(root.asReader()));
}

Bytes encodeLink(ByteView body, const Signature& signature) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<wire::Link>();
  root.setBody(capnp::Data::Reader(body.data(), body.size()));
  root.setSignature(data(signature));
  return toBytes(capnp::canonicalize(root.asReader()));
}

namespace {

Result<DecodedLink> decodeBody(ByteView body, const Signature& signature, const Hash& teamId,
                               bool verifySignatures) {
  if (body.empty()) return malformed("body: empty");
  if (body.size() > kMaxLinkBodyBytes) return malformed("body: over 4 MiB");
  if (body.size() % sizeof(capnp::word) != 0) return malformed("body: not whole words");

  DecodedLink out;
  BodyChecker checker;
  try {
    const auto words = alignedWords(body);
    const kj::ArrayPtr<const capnp::word> segment = words.asPtr();
    capnp::SegmentArrayMessageReader message(kj::arrayPtr(&segment, 1),
                                             readerOptions(words.size()));
    if (!message.isCanonical()) return malformed("body: not canonical");
    if (!checker.body(message.getRoot<wire::LinkBody>(), out.parsed)) {
      return malformed(checker.failure());
    }
  } catch (const kj::Exception& e) {
    return malformed("body: " + std::string(e.getDescription().cStr()));
  }

  if (verifySignatures) {
    Bytes message(kLinkSigTag.begin(), kLinkSigTag.end());
    message.insert(message.end(), body.begin(), body.end());
    if (!verifyBytes(message, signature, out.parsed.deviceId)) {
      return malformed("signature: does not verify under deviceId");
    }
    // An action this version knows is checked in full, its consents included, even when words
    // of a later version make the link unknown (model.py checks consents on every stored link).
    if (!consentsVerify(out.parsed.action, teamId)) return malformed("consent: does not verify");
  }
  // A later version also puts small fields into the unused bits of this schema's words, which
  // check 1 cannot see field by field: a known body that does not re-encode to its own bytes
  // carries such a field, and is unknown like one with words beyond the schema (§2.3). Its
  // known action stays parsed, so the graph's structural checks (checks 3–5) apply to it too.
  out.unknown = checker.unknown() ||
                (typeOf(out.parsed.action) != ActionType::Unknown &&
                 !std::ranges::equal(encodeLinkBody(out.parsed), body));
  out.hash = linkHash(body, signature);
  out.body.assign(body.begin(), body.end());
  out.signature = signature;
  return out;
}

}  // namespace

Result<DecodedLink> decodeLink(ByteView body, const Signature& signature, const Hash& teamId) {
  return decodeBody(body, signature, teamId, true);
}

Result<DecodedLink> redecodeStoredLink(ByteView body, const Signature& signature,
                                       const Hash& teamId) {
  return decodeBody(body, signature, teamId, false);
}

Result<LinkParts> splitLink(ByteView link) {
  if (link.empty()) return malformed("link: empty");
  if (link.size() > kMaxLinkBytes) return malformed("link: over the size limit");
  if (link.size() % sizeof(capnp::word) != 0) return malformed("link: not whole words");

  LinkParts out;
  try {
    const auto words = alignedWords(link);
    const kj::ArrayPtr<const capnp::word> segment = words.asPtr();
    capnp::SegmentArrayMessageReader message(kj::arrayPtr(&segment, 1),
                                             readerOptions(words.size()));
    if (!message.isCanonical()) return malformed("link: not canonical");
    const auto root = message.getRoot<wire::Link>();
    // The envelope is not hashed: a field it might gain would be lost in storage, so it has none.
    const capnp::AnyStruct::Reader any(root);
    if (any.getDataSection().size() != 0 || any.getPointerSection().size() > 2) {
      return malformed("link: fields beyond body and signature");
    }
    if (!root.hasBody()) return malformed("link.body: missing");
    if (!root.hasSignature()) return malformed("link.signature: missing");
    const auto sig = root.getSignature();
    if (sig.size() != out.signature.size()) return malformed("link.signature: wrong size");
    std::memcpy(out.signature.data(), sig.begin(), out.signature.size());
    const auto b = root.getBody();
    out.body.assign(b.begin(), b.end());
  } catch (const kj::Exception& e) {
    return malformed("link: " + std::string(e.getDescription().cStr()));
  }
  return out;
}

Result<DecodedLink> decodeLink(ByteView link, const Hash& teamId) {
  auto parts = splitLink(link);
  if (!parts) return std::move(parts).error();
  return decodeLink(ByteView(parts->body), parts->signature, teamId);
}

}  // namespace portcullis::team
