/* Groups (create, delete, set permissions) and the permission catalogue (define, delete). */
import { isPermissionCodename } from '../../../auth/accounts.js'
import { isTesseraError, TesseraError } from '../../../core/errors.js'
import { actionContext, pageContext, send, type AdminApp, type AdminKit } from '../context.js'
import { redirectWith, takeFlash } from '../flash.js'
import { csrfFor, param, postAction, replaceCodenames } from '../forms.js'
import { groupsPage } from '../views/groups.js'

/** The routes under `/groups` and `/permissions`. */
export function groupRoutes(app: AdminApp, kit: AdminKit): void {
  const { accounts } = kit.deps.auth

  async function findGroupOr404(id: string): Promise<{ id: string; name: string }> {
    const group = (await accounts.listGroups()).find((g) => g.id === id)
    if (group === undefined) throw new TesseraError('not_found', 'There is no group with this id.')
    return group
  }

  app.get('/groups', async (c) => {
    const flash = await takeFlash(kit, c)
    const [groups, grants, members, permissions] = await Promise.all([
      accounts.listGroups(),
      accounts.listGroupPermissions(),
      accounts.countMembers(),
      accounts.listPermissions(),
    ])
    const data = {
      groups: groups.map((group) => ({
        ...group,
        permissions: grants.get(group.id) ?? [],
        members: members.get(group.id) ?? 0,
      })),
      permissions,
    }
    return send(c, groupsPage(pageContext(kit, c, csrfFor(c), flash), data))
  })

  postAction(app, kit, '/groups', async (c, form) => {
    const name = form.get('name') ?? ''
    try {
      const group = await accounts.createGroup(name, actionContext(kit, c))
      return await redirectWith(kit, c, '/groups', {
        kind: 'ok',
        text: `Created group ${group.name}.`,
      })
    } catch (error) {
      if (
        isTesseraError(error) &&
        (error.code === 'invalid_argument' || error.code === 'conflict')
      ) {
        return redirectWith(kit, c, '/groups', {
          kind: 'error',
          text: `Group not created: ${error.message}.`,
        })
      }
      throw error
    }
  })

  postAction(app, kit, '/groups/:id/delete', async (c) => {
    const group = await findGroupOr404(param(c, 'id'))
    await accounts.deleteGroup(group.id, actionContext(kit, c))
    return redirectWith(kit, c, '/groups', { kind: 'ok', text: `Deleted group ${group.name}.` })
  })

  postAction(app, kit, '/groups/:id/permissions', async (c, form) => {
    const group = await findGroupOr404(param(c, 'id'))
    const ctx = actionContext(kit, c)
    return replaceCodenames(kit, c, form, {
      back: '/groups',
      label: `Permissions of ${group.name}`,
      current: async () => (await accounts.listGroupPermissions()).get(group.id) ?? [],
      grant: (codename) => accounts.grantGroupPermission(group.id, codename, ctx),
      revoke: (codename) => accounts.revokeGroupPermission(group.id, codename, ctx),
    })
  })

  postAction(app, kit, '/permissions', async (c, form) => {
    const codename = (form.get('codename') ?? '').trim()
    const description = (form.get('description') ?? '').trim().slice(0, 200)
    if (!isPermissionCodename(codename)) {
      return redirectWith(kit, c, '/groups', {
        kind: 'error',
        text: `“${String(codename).slice(0, 100)}” is not a permission codename (app.action, lower case).`,
      })
    }
    await accounts.definePermission(codename, { description })
    return redirectWith(kit, c, '/groups', { kind: 'ok', text: `Saved permission ${codename}.` })
  })

  postAction(app, kit, '/permissions/delete', async (c, form) => {
    const codename = form.get('codename') ?? ''
    const deleted =
      isPermissionCodename(codename) &&
      (await accounts.deletePermission(codename, actionContext(kit, c)))
    return redirectWith(kit, c, '/groups', {
      kind: deleted ? 'ok' : 'error',
      text: deleted
        ? `Deleted permission ${codename} and every grant of it.`
        : 'No such permission.',
    })
  })
}
