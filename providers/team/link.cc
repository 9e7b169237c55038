#include "link.h"

namespace portcullis::team {

const char* actionName(ActionType type) noexcept {
  switch (type) {
    case ActionType::Root: return "root";
    case ActionType::AddMember: return "addMember";
    case ActionType::InviteMember: return "inviteMember";
    case ActionType::InviteDevice: return "inviteDevice";
    case ActionType::RevokeInvitation: return "revokeInvitation";
    case ActionType::AdmitMember: return "admitMember";
    case ActionType::AdmitDevice: return "admitDevice";
    case ActionType::AddDevice: return "addDevice";
    case ActionType::RemoveDevice: return "removeDevice";
    case ActionType::RemoveMember: return "removeMember";
    case ActionType::AddMemberRole: return "addMemberRole";
    case ActionType::RemoveMemberRole: return "removeMemberRole";
    case ActionType::SetDocumentAccess: return "setDocumentAccess";
    case ActionType::AddServer: return "addServer";
    case ActionType::RemoveServer: return "removeServer";
    case ActionType::RotateKeys: return "rotateKeys";
    case ActionType::Unknown: return "unknown";
  }
  return "unknown";  // a value outside the enum: treated like an action of a later version
}

}  // namespace portcullis::team
