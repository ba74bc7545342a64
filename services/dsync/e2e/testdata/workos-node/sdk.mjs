// Calls dsync through the official WorkOS Node SDK and prints what the SDK
// returned as one JSON object; workos_sdk_test.go asserts on it. Input comes
// from the environment so nothing here knows ids or ports.
import { WorkOS } from '@workos-inc/node';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const url = new URL(env('DSYNC_URL'));
const workos = new WorkOS(env('DSYNC_API_KEY'), {
  apiHostname: url.hostname,
  port: Number(url.port),
  https: false,
});
const ds = workos.directorySync;
const directory = env('DSYNC_DIRECTORY_ID');
const group = env('DSYNC_GROUP_ID');
const user = env('DSYNC_USER_ID');

const out = {};
const firstPage = await ds.listUsers({ directory });
out.listUsersFirstPage = { data: firstPage.data, listMetadata: firstPage.listMetadata };
out.listUsersAll = await firstPage.autoPagination();
out.listUsersAsc = (await ds.listUsers({ directory, order: 'asc', limit: 5 })).data;
out.listUsersByGroup = await (await ds.listUsers({ group })).autoPagination();
out.getUser = await ds.getUser(user);
out.listGroups = await (await ds.listGroups({ directory })).autoPagination();
out.listGroupsByUser = (await ds.listGroups({ user })).data;
out.getGroup = await ds.getGroup(group);
out.listDirectories = await (await ds.listDirectories()).autoPagination();
out.listDirectoriesSearch = (await ds.listDirectories({ search: 'okta', organizationId: env('DSYNC_ORGANIZATION_ID') })).data;
out.getDirectory = await ds.getDirectory(directory);
const events = await workos.events.listEvents({ events: ['dsync.user.created', 'dsync.group.user_added'], limit: 100 });
out.events = { data: events.data, listMetadata: events.listMetadata };
try {
  await ds.getUser('directory_user_01ARZ3NDEKTSV4RRFFQ69G5FAV');
  out.notFound = null;
} catch (e) {
  out.notFound = { name: e.constructor.name, status: e.status, message: e.message };
}
process.stdout.write(JSON.stringify(out));
