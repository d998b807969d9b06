// The approval card: approve a ticket as proposed (desktop), edit one before approving
// (phone), and reject one with a reason.
import { scenario, openPage, ask, screenshot, demoState, lastAnswer, runEnded, PHONE } from './lib.mjs';

async function card(page) {
  const approval = page.locator('.approval[data-state="pending"]');
  await approval.waitFor();
  await runEnded(page);
  return approval.evaluate((el) => ({
    interruptId: el.dataset.interruptId,
    title: el.querySelector('.ticket-title')?.textContent,
    priority: el.querySelector('.prio')?.textContent,
    question: el.querySelector('.approval-question')?.textContent,
  }));
}

await scenario(async ({ context }) => {
  // Approve as proposed.
  const page = await openPage(context);
  await ask(page, 'File a ticket: the dashboard is down since this morning');
  const proposed = await card(page);
  const composerLocked = await page.locator('#input').isDisabled();
  await screenshot(page, 'desktop-approval');
  await page.click('.approval [data-action="approve"]');
  const approvedRun = await runEnded(page);
  const approved = {
    proposed,
    composerLocked,
    cardState: await page.locator('.approval').first().getAttribute('data-state'),
    answer: await lastAnswer(page),
    run: approvedRun,
    ...(await demoState(page)),
  };

  // Reject the next one, in the same conversation.
  await ask(page, 'Please open a ticket: the printer is on fire');
  await card(page);
  await page.click('.approval[data-state="pending"] [data-action="reject"]');
  await page.fill('.approval input[name="reason"]', 'duplicate of an open ticket');
  await page.click('.approval [data-action="confirm-reject"]');
  await runEnded(page);
  const rejected = { answer: await lastAnswer(page) };

  // Edit before approving, on a phone.
  const phone = await openPage(context, { size: PHONE });
  await ask(phone, 'File a ticket: login is broken for SSO users');
  const phoneProposed = await card(phone);
  await screenshot(phone, 'phone-approval');
  await phone.click('.approval [data-action="edit"]');
  await phone.fill('.approval input[name="title"]', 'SSO login fails with error 502');
  await phone.selectOption('.approval select[name="priority"]', 'low');
  await phone.click('.approval [data-action="save"]');
  const editedRun = await runEnded(phone);
  const edited = {
    proposed: phoneProposed,
    cardState: await phone.locator('.approval').first().getAttribute('data-state'),
    summary: await phone.locator('.approval-result').first().textContent(),
    answer: await lastAnswer(phone),
    run: editedRun,
    ...(await demoState(phone)),
  };
  return { approved, rejected, edited, problems: page.problems.concat(phone.problems) };
});
